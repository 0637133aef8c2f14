"""back office settings and branches (reserved slot: empty unless this part needed a schema change)

Revision ID: a1b2c3d40001
Revises: e89b15e68547
"""

from collections.abc import Sequence

revision: str = "a1b2c3d40001"
down_revision: str | Sequence[str] | None = "e89b15e68547"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
