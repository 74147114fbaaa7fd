"""automatic mail counted per ticket too

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("automatic_mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_automatic_mail_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"]
        )
        batch_op.create_index(
            "ix_automatic_mail_ticket_sent", ["ticket_id", "sent_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("automatic_mail", schema=None) as batch_op:
        batch_op.drop_index("ix_automatic_mail_ticket_sent")
        batch_op.drop_constraint(op.f("fk_automatic_mail_ticket_id_tickets"), type_="foreignkey")
        batch_op.drop_column("ticket_id")
