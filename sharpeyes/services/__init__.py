"""Real services the project starts for its tests and city scenario: SeaweedFS S3, PostgreSQL clusters."""
