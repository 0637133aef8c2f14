"""ticket.forma_pago: how a ticket was paid (SAT c_FormaPago), when the point of sale says

Revision ID: a1b2c3d40006
Revises: a1b2c3d40005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40006"
down_revision: str | Sequence[str] | None = "a1b2c3d40005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forma_pago", sa.String(length=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("forma_pago")
