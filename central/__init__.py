"""The central incident service: MQTT ingest, incident store, REST API and web console."""
