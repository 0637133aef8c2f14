"""The schema: migrations agree with the models, and the business's unique keys hold."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from webapp.app import create_app
from webapp.db import make_engine
from webapp.extensions import db
from webapp.migrate import alembic_config, upgrade
from webapp.models import Branch, Invoice, Issuer, Ticket, TicketLine, metadata

NOW = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)


def test_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(url)
    assert {t.name for t in metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_migrations_run_on_a_database_with_data(tmp_path):
    """SQLite rebuilds tables to alter them: rows pointing at them must not stop it."""
    from alembic import command

    from webapp import crypto
    from webapp.demo.data import load_demo

    url = f"sqlite:///{tmp_path / 'filled.db'}"
    upgrade(url)
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": url, "PAC_SANDBOX_DIR": str(tmp_path)}
    )
    with app.app_context():
        load_demo(db.session, crypto.cipher_from_config(app.config), now=NOW)
    app.extensions["db"].engine.dispose()
    command.downgrade(alembic_config(url), "3b32afb7f45b")  # before the panel and the kiosks
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM branch").scalar() == 3
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_ticket_forma_pago_migration_keeps_the_tickets(tmp_path):
    """Down and up again across a1b2c3d40006: the tickets stay, their forma de pago is gone
    (null) after the round trip, and a new ticket may record one."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'forma.db'}"
    upgrade(url)
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": url, "PAC_SANDBOX_DIR": str(tmp_path)}
    )
    with app.app_context():
        ticket = _ticket(_issuer(db.session).branches[0], "555")
        ticket.forma_pago = "04"
        db.session.add(ticket)
        db.session.commit()
    app.extensions["db"].engine.dispose()

    command.downgrade(alembic_config(url), "a1b2c3d40005")
    engine = make_engine(url)
    assert "forma_pago" not in {c["name"] for c in inspect(engine).get_columns("ticket")}
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT ticket_number, forma_pago FROM ticket").all()
        assert [tuple(r) for r in rows] == [("555", None)]
        assert conn.exec_driver_sql("SELECT count(*) FROM ticket_line").scalar() == 1
    engine.dispose()


def _issuer(session) -> Issuer:
    issuer = Issuer(
        slug="t", rfc="AAA010101AAA", legal_name="PRUEBA", regimen_fiscal="601", cp="06000"
    )
    branch = Branch(issuer=issuer, code="S1", name="Centro", cp="06000")
    session.add_all([issuer, branch])
    session.flush()
    return issuer


def _ticket(branch: Branch, number: str) -> Ticket:
    return Ticket(
        branch=branch,
        order_number="1001",
        ticket_number=number,
        sold_at=NOW,
        total=Decimal("116.00"),
        lines=[
            TicketLine(
                position=1,
                description="Jabón",
                clave_prod_serv="53131608",
                clave_unidad="H87",
                quantity=Decimal(1),
                unit_price=Decimal(100),
                tax_factor="Tasa",
                tax_rate=Decimal("0.16"),
            )
        ],
    )


def test_ticket_number_is_unique_per_branch(app):
    with app.app_context():
        session = db.session
        branch = _issuer(session).branches[0]
        session.add(_ticket(branch, "555"))
        session.commit()
        stored = session.get(Ticket, 1) or session.query(Ticket).one()
        assert stored.total == Decimal("116.00") and stored.sold_at == NOW
        assert stored.lines[0].tax_rate == Decimal("0.16")
        session.add(_ticket(branch, "555"))
        with pytest.raises(IntegrityError):
            session.commit()


def _invoice(issuer: Issuer, folio: int, uuid: str | None) -> Invoice:
    return Invoice(
        issuer=issuer,
        branch=issuer.branches[0],
        serie="A",
        folio=folio,
        uuid=uuid,
        fecha=NOW,
        receptor_rfc="XOJI740919U48",
        receptor_nombre="INGRID XODAR JIMENEZ",
        receptor_cp="76028",
        receptor_regimen="612",
        uso_cfdi="G03",
        forma_pago="01",
        subtotal=Decimal("100.00"),
        taxes=Decimal("16.00"),
        total=Decimal("116.00"),
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [((1, "U-1"), (1, "U-2")), ((1, "U-1"), (2, "U-1"))],
    ids=["serie-folio", "uuid"],
)
def test_invoice_serie_folio_and_uuid_are_unique(app, first, second):
    with app.app_context():
        session = db.session
        issuer = _issuer(session)
        session.add(_invoice(issuer, *first))
        session.commit()
        invoice = session.query(Invoice).one()
        assert len(invoice.public_id) >= 20 and invoice.public_id != str(invoice.id)
        session.add(_invoice(issuer, *second))
        with pytest.raises(IntegrityError):
            session.commit()
