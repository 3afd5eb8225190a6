"""Alembic migrations of the journal (run with :func:`propdesk.storage.migrate.upgrade`)."""
