-- Runs once, when the postgres container starts on an empty data volume (postgres-data).
-- One database per tenant so each can be backed up, migrated and dropped on its own; they all
-- belong to POSTGRES_USER, the role every service in docker-compose.yml connects as.
-- To re-run it: `docker compose down -v` (this deletes the data) and start again.
create database airflow;    -- Airflow metadata DB and Celery result backend
create database warehouse;  -- Nightshift warehouse: raw, quarantine, features, predictions, marts
create database mlflow;     -- MLflow tracking and model registry backend store
create database feast;      -- Feast SQL registry and offline store
