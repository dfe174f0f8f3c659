"""The REST API (FastAPI): routes, response models and the dependencies they share."""
