"""factura global (reserved slot: empty unless this part needed a schema change)

Revision ID: a1b2c3d40004
Revises: a1b2c3d40003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40004"
down_revision: str | Sequence[str] | None = "a1b2c3d40003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The first day of a factura global's period: the list shows it, the correction reissues it.
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("global_period_start", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.drop_column("global_period_start")
