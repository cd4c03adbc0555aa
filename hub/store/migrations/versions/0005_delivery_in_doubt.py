"""``deliveries.in_doubt``: an attempt may have reached the target without the hub knowing.

The doubt used to travel only as a header on the retry copy; a copy published another way (the
overdue-retry watch, the outbox relay, a replay) went out without it and could send a dossier state
the target already had. The store keeps it now, so every copy is looked up first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("in_doubt", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("in_doubt")
