"""The sharpeyes v1 MQTT contract: topics, payload models and broker configuration.

Edge and central share only this package; neither imports the other.
"""
