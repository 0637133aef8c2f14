"""signed_session: sessions kept on the server, so that signing out ends them

Revision ID: a1b2c3d40008
Revises: a1b2c3d40007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40008"
down_revision: str | Sequence[str] | None = "a1b2c3d40007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signed_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "(account_id IS NULL) <> (staff_id IS NULL)",
            name=op.f("ck_signed_session_one_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_signed_session_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_member.id"],
            name=op.f("fk_signed_session_staff_id_staff_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_session")),
    )
    with op.batch_alter_table("signed_session", schema=None) as batch_op:
        batch_op.create_index("ix_signed_session_account_id", ["account_id"], unique=False)
        batch_op.create_index("ix_signed_session_staff_id", ["staff_id"], unique=False)
        batch_op.create_index("ix_signed_session_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("signed_session")
