"""issuer invoices and cancellation (reserved slot: empty unless this part needed a schema change)

Revision ID: a1b2c3d40003
Revises: a1b2c3d40002
"""

from collections.abc import Sequence

revision: str = "a1b2c3d40003"
down_revision: str | Sequence[str] | None = "a1b2c3d40002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
