"""deferred_attachment: a mail attachment may be rendered by the worker at delivery (an
invoice's PDF): `data` nullable, `renderer` and `source_id` say what makes it

Revision ID: a1b2c3d40009
Revises: a1b2c3d40008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40009"
down_revision: str | Sequence[str] | None = "a1b2c3d40008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mail_attachment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renderer", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_mail_attachment_data_or_renderer"), "data IS NOT NULL OR renderer IS NOT NULL"
        )


def downgrade() -> None:
    # An attachment still waiting for the worker has no bytes to keep: the message goes
    # without it (the schema before this revision cannot say how to make it).
    op.execute("DELETE FROM mail_attachment WHERE data IS NULL")
    with op.batch_alter_table("mail_attachment", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_mail_attachment_data_or_renderer"), type_="check")
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("source_id")
        batch_op.drop_column("renderer")
