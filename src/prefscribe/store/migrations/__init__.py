"""Alembic migrations of the profile store. `prefscribe db upgrade` runs them; see store/_schema.py."""
