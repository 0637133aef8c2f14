"""sri_documents: Ecuador's SRI facturas (issue #16)

The issuer's SRI data (nombre comercial, dirección matriz, contabilidad, contribuyente
especial, RIMPE) and its signing certificate (.p12, encrypted); each branch's establecimiento,
punto de emisión and gap-free secuencial; an invoice's clave de acceso, its state at SRI, the
buyer's identification type and address, and room for SRI's longer ids (a 49-digit número de
autorización in `uuid`, a passport in `receptor_rfc`).

Columns and indexes are added in place; the two widened columns rebuild the invoice table
on SQLite (batch mode), a copy of the table.

Revision ID: a1b2c3d40012
Revises: a1b2c3d40011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1b2c3d40012"
down_revision: str | Sequence[str] | None = "a1b2c3d40011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("branch", sa.Column("estab", sa.String(length=3), nullable=True))
    op.add_column("branch", sa.Column("pto_emi", sa.String(length=3), nullable=True))
    op.add_column(
        "branch",
        sa.Column("next_secuencial", sa.Integer(), server_default="1", nullable=False),
    )
    op.create_index(
        "uq_branch_issuer_id_estab_pto_emi",
        "branch",
        ["issuer_id", "estab", "pto_emi"],
        unique=True,
    )
    op.add_column("invoice", sa.Column("receptor_id_type", sa.String(length=2), nullable=True))
    op.add_column("invoice", sa.Column("receptor_address", sa.String(length=300), nullable=True))
    op.add_column("invoice", sa.Column("access_key", sa.String(length=49), nullable=True))
    op.add_column("invoice", sa.Column("authority_state", sa.String(length=20), nullable=True))
    op.create_index("uq_invoice_access_key", "invoice", ["access_key"], unique=True)
    with op.batch_alter_table("invoice") as batch:
        batch.alter_column("uuid", type_=sa.String(length=49), existing_nullable=True)
        batch.alter_column("receptor_rfc", type_=sa.String(length=20), existing_nullable=False)
    op.add_column("issuer", sa.Column("trade_name", sa.String(length=300), nullable=True))
    op.add_column("issuer", sa.Column("head_office_address", sa.String(length=300), nullable=True))
    op.add_column(
        "issuer",
        sa.Column("keeps_accounts", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("issuer", sa.Column("special_taxpayer", sa.String(length=13), nullable=True))
    op.add_column("issuer", sa.Column("rimpe", sa.String(length=60), nullable=True))
    op.add_column("issuer", sa.Column("p12_encrypted", sa.LargeBinary(), nullable=True))
    op.add_column("issuer", sa.Column("p12_password_encrypted", sa.LargeBinary(), nullable=True))
    op.add_column("issuer", sa.Column("p12_subject", sa.String(length=254), nullable=True))
    op.add_column("issuer", sa.Column("p12_valid_to", sa.DateTime(), nullable=True))


def downgrade() -> None:
    for column in (
        "p12_valid_to",
        "p12_subject",
        "p12_password_encrypted",
        "p12_encrypted",
        "rimpe",
        "special_taxpayer",
        "keeps_accounts",
        "head_office_address",
        "trade_name",
    ):
        op.drop_column("issuer", column)
    with op.batch_alter_table("invoice") as batch:
        batch.alter_column("receptor_rfc", type_=sa.String(length=13), existing_nullable=False)
        batch.alter_column("uuid", type_=sa.String(length=36), existing_nullable=True)
    op.drop_index("uq_invoice_access_key", table_name="invoice")
    for column in ("authority_state", "access_key", "receptor_address", "receptor_id_type"):
        op.drop_column("invoice", column)
    op.drop_index("uq_branch_issuer_id_estab_pto_emi", table_name="branch")
    for column in ("next_secuencial", "pto_emi", "estab"):
        op.drop_column("branch", column)
