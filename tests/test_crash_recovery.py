"""Fault injection: a process stamping an invoice is killed (SIGKILL) at each state of the
state machine; one reconcile then leaves no invoice lost, duplicated or stuck, folios
without gaps, and every stamped invoice with its email queued."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Invoice, InvoiceStatus, MailMessage, Ticket, TicketStatus, invoice_ticket
from webapp.wiring import stamping

CHILD = Path(__file__).with_name("crash_child.py")
STAGES = ("draft", "signed", "stamping", "answered")
EMAIL = "crash@example.com"


def run_killed(app, stage: str, ticket: dict) -> None:
    keys = (
        "SECRET_KEY",
        "DATA_KEY",
        "DATABASE_URL",
        "MAIL_URL",
        "BASE_URL",
        "PAC_SANDBOX_DIR",
        "SRI_SANDBOX_DIR",
    )
    config = {k: app.config.get(k) for k in keys} | {"TESTING": True, "RATELIMIT_ENABLED": False}
    child = subprocess.run(
        [sys.executable, str(CHILD), json.dumps(config), stage, json.dumps(ticket)],
        capture_output=True,
        text=True,
        timeout=300,  # a bound for a hung child, far above its few seconds on a busy machine
    )
    assert child.returncode == -signal.SIGKILL, (stage, child.stdout, child.stderr[-2000:])


def test_killed_at_every_state_then_reconciled(app, demo):
    branch_id = demo["fresh"][0]["branch_id"]
    with app.app_context():
        fresh = db.session.scalars(
            select(Ticket.id)
            .where(Ticket.branch_id == branch_id, Ticket.status == TicketStatus.OPEN)
            .order_by(Ticket.sold_at.desc())
            .limit(len(STAGES))
        ).all()
    for stage, ticket_id in zip(STAGES, fresh, strict=True):
        ticket = {
            "id": ticket_id,
            "branch_id": branch_id,
            "rfc": "XOJI740919U48",
            "nombre": "INGRID XODAR JIMENEZ",
            "email": EMAIL,
        }
        run_killed(app, stage, ticket)
    with app.app_context():
        left = {i.idempotency_key: i.status for i in db.session.scalars(select(Invoice))}
        assert left == {
            "crash-draft": InvoiceStatus.DRAFT,
            "crash-signed": InvoiceStatus.SIGNED,
            "crash-stamping": InvoiceStatus.STAMPING,
            "crash-answered": InvoiceStatus.STAMPING,
        }
        pac = stamping().providers.deployment()
        answered = db.session.scalar(
            select(Invoice).where(Invoice.idempotency_key == "crash-answered")
        )
        stamped_there = pac.recover(answered.xml)
        assert stamped_there is not None  # the PAC stamped it; its answer died with the process

    result = app.test_cli_runner().invoke(args=["invoices", "reconcile", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "recorded now: 1; stamped now: 3; released (tickets and folio free): 0" in result.output

    with app.app_context():
        invoices = db.session.scalars(select(Invoice).order_by(Invoice.folio)).all()
        assert [i.status for i in invoices] == [InvoiceStatus.STAMPED] * len(STAGES)  # none stuck
        assert [i.folio for i in invoices] == list(range(1, len(STAGES) + 1))  # no gaps
        by_key = {i.idempotency_key: i for i in invoices}
        assert by_key["crash-answered"].uuid == stamped_there.uuid  # not stamped twice
        for invoice in invoices:
            assert pac.recover(invoice.xml).uuid == invoice.uuid  # the PAC's one stamp
        for ticket_id in fresh:
            assert db.session.get(Ticket, ticket_id).status is TicketStatus.INVOICED
            holders = db.session.scalar(
                select(func.count())
                .select_from(invoice_ticket)
                .where(invoice_ticket.c.ticket_id == ticket_id, invoice_ticket.c.active)
            )
            assert holders == 1  # one ticket, one invoice
        mails = db.session.scalar(
            select(func.count()).select_from(MailMessage).where(MailMessage.to_addrs == EMAIL)
        )
        assert mails == len(STAGES)  # every stamped invoice has its email queued
    # A second reconcile has nothing left to do.
    again = app.test_cli_runner().invoke(args=["invoices", "reconcile", "--older-than", "0"])
    assert "recorded now: 0; stamped now: 0; released (tickets and folio free): 0; " in again.output


EC_STAGES = ("draft", "signed", "stamping", "received", "answered")


def test_an_sri_factura_killed_at_every_state_then_reconciled(app, ec_shop):
    """Ecuador: killed before SRI saw it, after SRI received it, after SRI authorised it;
    reconcile asks SRI by clave de acceso and sends only what SRI never had."""
    for stage, ticket in zip(EC_STAGES, ec_shop["tickets"], strict=True):
        run_killed(
            app,
            stage,
            {
                "id": ticket["id"],
                "branch_id": ec_shop["branch_id"],
                "country": "EC",
                "rfc": ec_shop["cedula"],
                "nombre": "MARIA JOSE ANDRADE",
                "email": EMAIL,
            },
        )
    with app.app_context():
        left = {
            i.idempotency_key: (i.status, i.authority_state)
            for i in db.session.scalars(select(Invoice))
        }
        assert left == {
            "crash-draft": (InvoiceStatus.DRAFT, None),
            "crash-signed": (InvoiceStatus.SIGNED, None),
            "crash-stamping": (InvoiceStatus.STAMPING, None),
            "crash-received": (InvoiceStatus.STAMPING, "sent"),
            "crash-answered": (InvoiceStatus.STAMPING, "received"),
        }

    result = app.test_cli_runner().invoke(args=["invoices", "reconcile", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "recorded now: 2; stamped now: 3; released (tickets and folio free): 0" in result.output

    with app.app_context():
        sri = stamping().providers.sri()
        invoices = db.session.scalars(select(Invoice).order_by(Invoice.folio)).all()
        assert [i.status for i in invoices] == [InvoiceStatus.STAMPED] * len(EC_STAGES)
        assert [i.folio for i in invoices] == list(range(1, len(EC_STAGES) + 1))  # no gaps
        for invoice in invoices:
            assert invoice.uuid == invoice.access_key
            decisions = sri.authorisations(invoice.access_key)
            assert [d.state.value for d in decisions] == ["AUTORIZADO"]  # received once
        mails = db.session.scalar(
            select(func.count()).select_from(MailMessage).where(MailMessage.to_addrs == EMAIL)
        )
        assert mails == len(EC_STAGES)
