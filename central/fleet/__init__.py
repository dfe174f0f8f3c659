"""What central knows of its edges' own state: heartbeat health and actuator records."""
