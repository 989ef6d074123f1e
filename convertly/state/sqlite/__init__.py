"""The embedded engine: every store in one SQLite database (WAL) under the data directory,
shared by the API process, its pool workers and the CLI (`database.py` holds the schema)."""
