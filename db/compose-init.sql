-- docker-compose only: the provider sandbox keeps its own tables in its own database.
CREATE DATABASE sandbox;
