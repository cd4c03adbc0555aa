"""Index delivery events by (target, kind, at) for the ops console and the health gauges.

The console's overview counts the last hour's deliveries and failures per target and reads
each target's last success and last failure; without this index those queries scan the
whole (append-only, ever growing) event table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_delivery_events_target_kind_at", "delivery_events", ["target", "kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_events_target_kind_at", table_name="delivery_events")
