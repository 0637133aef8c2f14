"""invoice.replaces_id: a replacement names the invoice it replaces (motive 01)

Revision ID: a1b2c3d40005
Revises: a1b2c3d40004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40005"
down_revision: str | Sequence[str] | None = "a1b2c3d40004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaces_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_invoice_replaces_id"), ["replaces_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_invoice_replaces_id_invoice"),
            "invoice",
            ["replaces_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_invoice_replaces_id_invoice"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_invoice_replaces_id"))
        batch_op.drop_column("replaces_id")
