"""the language and time zone of customers and usergroups, and the language detected in a
customer's first mail

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("detected_language", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("usergroups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usergroups", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("language")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("detected_language")
        batch_op.drop_column("language")
