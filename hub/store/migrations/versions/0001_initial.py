"""Initial message store: messages, deliveries, delivery events, dossier cursors.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("seq", _BigId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("dossier_code", sa.String(64)),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "idempotency_key", name="uq_messages_source_idempotency_key"),
    )
    op.create_index("ix_messages_dossier_code", "messages", ["dossier_code"])
    op.create_table(
        "deliveries",
        sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_deliveries_target_state", "deliveries", ["target", "state"])
    op.create_table(
        "delivery_events",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(64)),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("attempt", sa.Integer()),
        sa.Column("detail", sa.Text()),
        sa.Column("actor", sa.String(100)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_delivery_events_message_id", "delivery_events", ["message_id"])
    op.create_table(
        "dossier_cursors",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("dossier_code", sa.String(64), primary_key=True),
        sa.Column("delivered_seq", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dossier_cursors")
    op.drop_index("ix_delivery_events_message_id", table_name="delivery_events")
    op.drop_table("delivery_events")
    op.drop_index("ix_deliveries_target_state", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_messages_dossier_code", table_name="messages")
    op.drop_table("messages")
