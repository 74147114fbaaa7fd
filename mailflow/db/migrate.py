"""Alembic migrations driven from the application's own async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from mailflow.config import Config, ConfigError
from mailflow.db.session import Database, DatabaseUnavailable

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


async def ensure_current(db: Database, config: Config, *, upgrade_now: bool = False) -> None:
    """Migrate when `auto_migrate` allows it; otherwise refuse to run on an old schema.
    A database that cannot be opened, or whose schema is newer than this mailflow, is one
    line naming it, not a traceback."""
    try:
        if upgrade_now or config.database.auto_migrate:
            await upgrade(db)
        elif await pending(db):
            raise ConfigError(
                config.source,
                "database.auto_migrate",
                "the schema is out of date; run `mailflow db upgrade`",
            )
    except CommandError as exc:  # "Can't locate revision …": a newer mailflow migrated it
        raise ConfigError(
            config.source,
            "database.url",
            f"the database's schema is not one this mailflow knows (a newer version's?): {exc}",
        ) from None
    except (DBAPIError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        raise DatabaseUnavailable(f"cannot open the database {db.url!r}: {cause}") from None


def revision(connection: Connection, message: str) -> None:
    """Autogenerate a migration (a developer's tool, see README)."""
    command.revision(_alembic_config(connection), message=message, autogenerate=True)
