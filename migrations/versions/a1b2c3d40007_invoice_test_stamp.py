"""invoice.test_stamp: whether the provider that stamped it gave a test stamp; an index for
reconcile and the counters by state

Revision ID: a1b2c3d40007
Revises: a1b2c3d40006
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40007"
down_revision: str | Sequence[str] | None = "a1b2c3d40006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The sandbox PAC's certificate numbers start so (webapp.cfdi.pac.sandbox.NUMBER_PREFIX).
SANDBOX_TFD = 'NoCertificadoSAT="99990'


def upgrade() -> None:
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("test_stamp", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(
            "ix_invoice_status_updated_at", ["status", "updated_at"], unique=False
        )
    # Invoices stamped before: the sandbox's stamps are known by its certificate number; the
    # files of archived ones are compressed, so they take the deployment's provider.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        found = "position(convert_to(:mark, 'UTF8') in xml) > 0"
    else:
        found = "CAST(xml AS TEXT) LIKE '%' || :mark || '%'"
    op.execute(
        sa.text(
            f"UPDATE invoice SET test_stamp = true WHERE xml IS NOT NULL AND {found}"
        ).bindparams(mark=SANDBOX_TFD)
    )
    if os.environ.get("PAC", "sandbox") == "sandbox":
        op.execute("UPDATE invoice SET test_stamp = true WHERE archived AND uuid IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("invoice", schema=None) as batch_op:
        batch_op.drop_index("ix_invoice_status_updated_at")
        batch_op.drop_column("test_stamp")
