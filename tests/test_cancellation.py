"""Cancelling stamped invoices (webapp/issuing/cancel.py) through the sandbox PAC: who must
accept, each motive's rules, double requests, tickets released, and the customer's panel."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.flows import (
    LARGE,
    PASSWORD,
    RECEPTOR,
    RFC,
    SMALL,
    load,
    make_invoice,
    now,
    sandbox,
    sign_in,
    ticket_states,
    verified_account,
)
from webapp.cfdi.pac import CancelResult, Pac, PacError
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.extensions import db
from webapp.fiscal.receptor import Receptor
from webapp.issuing import cancel
from webapp.models import CancelRequest, CancelStatus, InvoiceStatus, TicketStatus

# --- SAT's acceptance rules in the sandbox ---------------------------------------------------


@pytest.mark.parametrize("motive", ["02", "03", "04"])
def test_small_total_is_cancelled_at_once_and_frees_the_tickets(app, demo, motive):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        invoice = load(public_id)
        assert invoice.total <= 1000
        cancel.request_cancel(db.session, invoice, motive, sandbox(app), now())
        invoice = load(public_id)
        assert invoice.status is InvoiceStatus.CANCELLED
        assert invoice.cancel_status is CancelStatus.CANCELLED
        assert invoice.cancel_motive == motive and invoice.cancelled_at is not None
        assert ticket_states(invoice) == [(TicketStatus.OPEN, False)]
        [history] = cancel.history_of(db.session, invoice)
        assert history.status is CancelStatus.CANCELLED and b"Acuse" in history.acuse


@pytest.mark.parametrize("rfc", ["XAXX010101000", "XEXX010101000"])
def test_publico_en_general_is_cancelled_at_once_whatever_the_total(app, demo, rfc):
    public_id = make_invoice(app, LARGE, receptor=Receptor(rfc, "", "", "", ""))
    with app.app_context():
        invoice = load(public_id)
        assert invoice.total > 1000
        cancel.request_cancel(db.session, invoice, "02", sandbox(app), now())
        assert load(public_id).status is InvoiceStatus.CANCELLED


def test_large_total_waits_for_the_receptor_who_accepts(app, demo):
    public_id = make_invoice(app, LARGE)
    pac = sandbox(app)
    with app.app_context():
        invoice = load(public_id)
        cancel.request_cancel(db.session, invoice, "02", pac, now())
        invoice = load(public_id)
        assert invoice.status is InvoiceStatus.STAMPED
        assert invoice.cancel_status is CancelStatus.PENDING
        assert ticket_states(invoice) == [(TicketStatus.INVOICED, True)]
        # Nothing new until the receptor answers.
        cancel.refresh(db.session, invoice, pac, now())
        assert load(public_id).cancel_status is CancelStatus.PENDING
        pac.receptor_answers(invoice.uuid, accept=True)
        cancel.refresh(db.session, invoice, pac, now())
        invoice = load(public_id)
        assert invoice.status is InvoiceStatus.CANCELLED
        assert invoice.cancel_status is CancelStatus.CANCELLED
        assert ticket_states(invoice) == [(TicketStatus.OPEN, False)]


def test_large_total_rejected_by_the_receptor_stays_valid_and_may_be_asked_again(app, demo):
    public_id = make_invoice(app, LARGE)
    pac = sandbox(app)
    with app.app_context():
        invoice = load(public_id)
        cancel.request_cancel(db.session, invoice, "03", pac, now())
        pac.receptor_answers(invoice.uuid, accept=False)
        cancel.refresh(db.session, invoice, pac, now())
        invoice = load(public_id)
        assert invoice.status is InvoiceStatus.STAMPED
        assert invoice.cancel_status is CancelStatus.REJECTED
        assert ticket_states(invoice) == [(TicketStatus.INVOICED, True)]
        # A rejected request can be made again.
        cancel.request_cancel(db.session, invoice, "03", pac, now())
        assert load(public_id).cancel_status is CancelStatus.PENDING
        assert [h.status for h in cancel.history_of(db.session, invoice)] == [
            CancelStatus.PENDING,
            CancelStatus.REJECTED,
        ]


def test_no_answer_in_three_days_cancels(app, demo):
    public_id = make_invoice(app, LARGE)
    with app.app_context():
        invoice = load(public_id)
        cancel.request_cancel(db.session, invoice, "02", sandbox(app), now())
        later = SandboxPac(app.config["PAC_SANDBOX_DIR"], now=lambda: now() + timedelta(days=4))
        cancel.refresh(db.session, invoice, later, now())
        assert load(public_id).status is InvoiceStatus.CANCELLED


def test_a_pending_request_is_not_sent_twice(app, demo):
    public_id = make_invoice(app, LARGE)
    with app.app_context():
        invoice = load(public_id)
        cancel.request_cancel(db.session, invoice, "02", sandbox(app), now())
        with pytest.raises(cancel.CancelError, match="en proceso"):
            cancel.request_cancel(db.session, invoice, "02", sandbox(app), now())
        assert len(cancel.history_of(db.session, invoice)) == 1


def test_a_cancelled_invoice_cannot_be_cancelled_again(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        invoice = load(public_id)
        cancel.request_cancel(db.session, invoice, "02", sandbox(app), now())
        with pytest.raises(cancel.CancelError, match="ya está cancelada"):
            cancel.request_cancel(db.session, invoice, "02", sandbox(app), now())


# --- motive 01 and the replacement -------------------------------------------------------------


def test_motive_01_needs_a_replacement(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        invoice = load(public_id)
        with pytest.raises(cancel.CancelError) as caught:
            cancel.request_cancel(db.session, invoice, "01", sandbox(app), now())
        assert caught.value.field == "replacement_uuid"
        assert load(public_id).cancel_status is None


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("nonsense", "UUID completo"),
        ("12345678-1234-1234-1234-123456789012", "No hay una factura de este emisor"),
        ("self", "a sí misma"),
    ],
)
def test_motive_01_with_a_wrong_replacement(app, demo, replacement, message):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        invoice = load(public_id)
        if replacement == "self":
            replacement = invoice.uuid
        with pytest.raises(cancel.CancelError, match=message) as caught:
            cancel.request_cancel(db.session, invoice, "01", sandbox(app), now(), replacement)
        assert caught.value.field == "replacement_uuid"
        assert load(public_id).status is InvoiceStatus.STAMPED


@pytest.mark.parametrize("motive", ["02", "03", "04"])
def test_other_motives_carry_no_replacement(app, demo, motive):
    old, new = make_invoice(app, SMALL), make_invoice(app, SMALL)
    with app.app_context():
        with pytest.raises(cancel.CancelError, match="Sólo el motivo 01") as caught:
            cancel.request_cancel(
                db.session, load(old), motive, sandbox(app), now(), load(new).uuid
            )
        assert caught.value.field == "replacement_uuid"


def test_unknown_motive(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        with pytest.raises(cancel.CancelError) as caught:
            cancel.request_cancel(db.session, load(public_id), "05", sandbox(app), now())
        assert caught.value.field == "motive"


# --- the PAC refusing or not answering ------------------------------------------------------


class RefusingPac(Pac):
    name = "refusing"

    def __init__(self, retryable: bool):
        self.retryable = retryable

    def stamp(self, xml):  # pragma: no cover - not used
        raise NotImplementedError

    def recover(self, xml):  # pragma: no cover - not used
        raise NotImplementedError

    def cancel(self, xml, motive, replacement_uuid=None) -> CancelResult:
        raise PacError("999", "No disponible", retryable=self.retryable)


def test_a_refused_request_leaves_the_invoice_as_it_was(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        with pytest.raises(cancel.CancelError, match="No disponible"):
            cancel.request_cancel(db.session, load(public_id), "02", RefusingPac(False), now())
        invoice = load(public_id)
        assert invoice.status is InvoiceStatus.STAMPED and invoice.cancel_status is None
        assert invoice.cancel_error == "No disponible"
        [history] = db.session.scalars(
            select(CancelRequest).where(CancelRequest.invoice_id == invoice.id)
        ).all()
        assert history.status is None and history.message == "No disponible"
        # …and it can be asked again.
        cancel.request_cancel(db.session, invoice, "02", sandbox(app), now())
        assert load(public_id).status is InvoiceStatus.CANCELLED


def test_a_provider_that_does_not_answer_leaves_it_pending_for_refresh(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        cancel.request_cancel(db.session, load(public_id), "02", RefusingPac(True), now())
        invoice = load(public_id)
        assert invoice.cancel_status is CancelStatus.PENDING
        # The sandbox never got it: refreshing says so and the invoice is free again.
        with pytest.raises(cancel.CancelError):
            cancel.refresh(db.session, invoice, sandbox(app), now())
        assert load(public_id).cancel_status is None


# --- the customer's panel shows the cancellation ----------------------------------------------


def _panel_state(client, public_id: str) -> str:
    html = client.get("/facturas/").get_data(as_text=True)
    row = re.search(
        rf'<tr>\s*<td><input type="checkbox" name="f" value="{public_id}".*?</tr>', html, re.S
    )
    assert row, html[:2000]
    cell = re.search(r'<td class="state-[a-z_]+">(.*?)</td>', row.group(0), re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", cell.group(1)).split())


@pytest.mark.parametrize(
    ("price", "answer", "shown"),
    [
        (SMALL, None, "cancelada"),
        (LARGE, None, "vigente cancelación en proceso"),
        (LARGE, True, "cancelada"),
        (LARGE, False, "vigente cancelación rechazada"),
    ],
)
def test_the_customer_panel_shows_the_cancellation(app, client, demo, price, answer, shown):
    with app.app_context():
        account_id = verified_account(RFC, RECEPTOR["email"])
    public_id = make_invoice(app, price, account_id=account_id)
    pac = sandbox(app)
    with app.app_context():
        invoice = load(public_id)
        cancel.request_cancel(db.session, invoice, "02", pac, now())
        if answer is not None:
            pac.receptor_answers(invoice.uuid, accept=answer)
            cancel.refresh(db.session, invoice, pac, now())
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    assert _panel_state(client, public_id) == shown
