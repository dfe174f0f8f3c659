"""Evidence blobs: content-addressed store, who may read them, redaction, retention, the PIPL register."""
