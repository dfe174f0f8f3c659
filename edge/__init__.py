"""The edge node: RTSP cameras to hazard events on MQTT."""
