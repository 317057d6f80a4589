"""Alembic, configured in code (no alembic.ini): works from any working directory and from an
installed package. Every entry point that is given a database URL calls `upgrade` first."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from serving.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_ID = 0x67726164  # any constant: serialises concurrent upgrades on one PostgreSQL database


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at serving/migrations, optionally bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent; safe when two processes start at once)."""
    with database.engine.begin() as conn:
        if database.backend == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
        command.upgrade(alembic_config(conn), revision)


def current_revision(database: Database) -> str | None:
    """The revision the database is at (None before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
