"""Payments (fee orders, callbacks received and their rejections) and VNPost shipments with tracking events.

``payments.transaction_id`` (MaGiaoDich) is unique so a duplicated or replayed callback has one
effect; ``shipment_events`` holds one row per (ItemCode, status) for the same reason.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("reference", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("partner_code", sa.String(64), nullable=False),
        sa.Column("dossier_code", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("fee_items", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("payment_url", sa.Text()),
        sa.Column("request_id", sa.String(36), nullable=False, unique=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True)),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(64), unique=True),
        sa.Column("bank_code", sa.String(32)),
        sa.Column("transaction_time", sa.String(14)),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.Column("settled_by", sa.String(20)),
        sa.Column("completed_message_id", sa.String(36)),
        sa.Column("reflected_message_id", sa.String(36)),
        sa.Column("receipt", sa.JSON()),
        sa.Column("receipt_message_id", sa.String(36)),
        sa.Column("refund_reference", sa.String(64), unique=True),
        sa.Column("refund_amount", sa.BigInteger()),
        sa.Column("refund_reason", sa.Text()),
        sa.Column("refunded_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
    )
    op.create_index("ix_payments_dossier_code", "payments", ["dossier_code"])
    op.create_index("ix_payments_state_next_check_at", "payments", ["state", "next_check_at"])
    op.create_table(
        "payment_callbacks",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("reference", sa.String(64)),
        sa.Column("transaction_id", sa.String(64)),
        sa.Column("partner_code", sa.String(64)),
        sa.Column("result_code", sa.String(8)),
        sa.Column("amount", sa.BigInteger()),
        sa.Column("currency", sa.String(8)),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("detail", sa.Text()),
        sa.Column("answer_code", sa.String(8)),
    )
    op.create_index("ix_payment_callbacks_reference", "payment_callbacks", ["reference"])
    op.create_index("ix_payment_callbacks_outcome_received_at", "payment_callbacks", ["outcome", "received_at"])
    op.create_table(
        "shipments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("dossier_code", sa.String(64), nullable=False),
        sa.Column("order_number", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(64), unique=True),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("emitted_status", sa.Integer(), nullable=False),
        sa.Column("last_message_id", sa.String(36)),
        sa.Column("cod_amount", sa.BigInteger(), nullable=False),
        sa.Column("service_name", sa.String(50)),
        sa.Column("fee", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True)),
        sa.Column("next_poll_at", sa.DateTime(timezone=True)),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("cancel_reason", sa.Text()),
    )
    op.create_index("ix_shipments_dossier_code", "shipments", ["dossier_code"])
    op.create_index("ix_shipments_state_next_poll_at", "shipments", ["state", "next_poll_at"])
    op.create_table(
        "shipment_events",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("status_name", sa.String(100), nullable=False),
        sa.Column("event_time", sa.String(14), nullable=False),
        sa.Column("post_office", sa.String(200)),
        sa.Column("note", sa.Text()),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("item_code", "status", name="uq_shipment_events_item_code_status"),
    )


def downgrade() -> None:
    op.drop_table("shipment_events")
    op.drop_index("ix_shipments_state_next_poll_at", table_name="shipments")
    op.drop_index("ix_shipments_dossier_code", table_name="shipments")
    op.drop_table("shipments")
    op.drop_index("ix_payment_callbacks_outcome_received_at", table_name="payment_callbacks")
    op.drop_index("ix_payment_callbacks_reference", table_name="payment_callbacks")
    op.drop_table("payment_callbacks")
    op.drop_index("ix_payments_state_next_check_at", table_name="payments")
    op.drop_index("ix_payments_dossier_code", table_name="payments")
    op.drop_table("payments")
