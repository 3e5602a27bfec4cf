"""Event stores: one protocol, an embedded SQLite default and PostgreSQL at scale."""
