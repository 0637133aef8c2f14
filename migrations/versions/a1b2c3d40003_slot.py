"""issuer invoices and cancellation: the history of cancellation requests

Revision ID: a1b2c3d40003
Revises: a1b2c3d40002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40003"
down_revision: str | Sequence[str] | None = "a1b2c3d40002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cancel_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("motive", sa.String(length=2), nullable=False),
        sa.Column("replacement_uuid", sa.String(length=36), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "cancelled",
                "rejected",
                name="cancel_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("acuse", sa.LargeBinary(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoice.id"],
            name=op.f("fk_cancel_request_invoice_id_invoice"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_member.id"],
            name=op.f("fk_cancel_request_staff_id_staff_member"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cancel_request")),
    )
    with op.batch_alter_table("cancel_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cancel_request_invoice_id"), ["invoice_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cancel_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cancel_request_invoice_id"))
    op.drop_table("cancel_request")
