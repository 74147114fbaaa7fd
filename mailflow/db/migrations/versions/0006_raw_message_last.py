"""inbound_messages.raw last in the row (SQLite)

SQLite builds each row as one record in memory: a 25 MB raw message in the middle of the
row is copied twice over whenever the row is written, and read through whenever a column
after it is read. Last in the row, it is written a megabyte at a time (db/large_values.py).
PostgreSQL keeps large values apart from the row already (TOAST): nothing to do there.

The column is moved without rebuilding the table, which other tables' foreign keys point
at: a copy added at the end, filled, the old one dropped, the copy renamed (SQLite 3.35).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("ALTER TABLE inbound_messages ADD COLUMN raw_last BLOB NOT NULL DEFAULT x''")
    op.execute("UPDATE inbound_messages SET raw_last = raw")
    op.execute("ALTER TABLE inbound_messages DROP COLUMN raw")
    op.execute("ALTER TABLE inbound_messages RENAME COLUMN raw_last TO raw")


def downgrade() -> None:
    """Where the column stands changes nothing that 0001 relies on."""
