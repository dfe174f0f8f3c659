"""From the broker to committed rows: receive, parse, read, plan (pure), apply; acks after commit."""
