"""Alembic environment: migrations run on a connection handed over by mailflow.db.migrate."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from mailflow.db.models import Base, UTCDateTime

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `mailflow db upgrade`, which supplies the connection")


def render_item(kind: str, item: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Write our UTC column type as its plain DateTime, so migrations import nothing of ours."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime()"
    return False


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
