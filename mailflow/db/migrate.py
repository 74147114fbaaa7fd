"""Alembic migrations driven from the application's own async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from mailflow.config import Config, ConfigError
from mailflow.db.session import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)

    db.create_directory()
    async with db.engine.begin() as connection:
        await connection.run_sync(run)


async def pending(db: Database) -> bool:
    """True when the schema is behind the code's newest migration."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(current) != head


async def ensure_current(db: Database, config: Config) -> None:
    """Migrate when `auto_migrate` allows it; otherwise refuse to run on an old schema."""
    if config.database.auto_migrate:
        await upgrade(db)
    elif await pending(db):
        raise ConfigError(
            config.source,
            "database.auto_migrate",
            "the schema is out of date; run `mailflow db upgrade`",
        )


def revision(connection: Connection, message: str) -> None:
    """Autogenerate a migration (a developer's tool, see README)."""
    command.revision(_alembic_config(connection), message=message, autogenerate=True)
