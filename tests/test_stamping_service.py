"""The one road for stamping: the test stamp is a fact of the invoice, the issuer must be able
to sign before anything is reserved, nothing after the PAC's answer leaves a stamp unrecorded,
and every press of one form gets the same answer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from tests.flows import RECEPTOR, start, text_of, ticket_data, verified_account
from webapp.cfdi.pac import Pac
from webapp.extensions import db
from webapp.fiscal.receptor import Receptor
from webapp.issuing import issue
from webapp.models import Invoice, InvoiceStatus, Issuer, MailMessage, Ticket, TicketStatus
from webapp.services.stamping import files_with_pdf
from webapp.wiring import stamping

EMAIL = RECEPTOR["email"]
RECEPTOR_DATA = Receptor("XOJI740919U48", RECEPTOR["nombre"], RECEPTOR["cp"], "612", "G03")


class Production(Pac):
    """The sandbox dressed as a production provider: its stamps are not tests."""

    name, test = "production-like", False

    def __init__(self, real):
        self.real = real

    def stamp(self, xml):
        return self.real.stamp(xml)

    def recover(self, xml):
        return self.real.recover(xml)


def invoice_ticket(client, t) -> Invoice:
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303, r.get_data(as_text=True)
    return r


def only_invoice() -> Invoice:
    return db.session.scalars(select(Invoice)).one()


def test_a_test_stamp_is_marked_whatever_the_deployment_says(app, client, demo):
    """The issuer's own provider (the sandbox) stamps under a deployment set to a real PAC:
    its PDF and email say SIN VALIDEZ FISCAL, because the invoice says it was a test."""
    app.config.update(PAC="finkok", PAC_USERNAME="u", PAC_PASSWORD="p")
    with app.app_context():
        stamping().providers.replace_deployment(None)
        db.session.execute(update(Issuer).values(pac_provider="sandbox"))
        db.session.commit()
    invoice_ticket(client, demo["fresh"][0])
    with app.app_context():
        invoice = only_invoice()
        assert invoice.status is InvoiceStatus.STAMPED and invoice.test_stamp
        assert "SIN VALIDEZ FISCAL" in text_of(files_with_pdf(db.session, invoice).pdf)
        mail = db.session.scalars(select(MailMessage)).one()
        assert "SIN VALIDEZ FISCAL" in mail.body_text


def test_the_back_office_shows_a_test_stamp(app, client, demo, staff, admin_login):
    invoice_ticket(client, demo["fresh"][0])
    with app.app_context():
        public_id = only_invoice().public_id
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    page = admin.get(f"/admin/facturas/{public_id}").get_data(as_text=True)
    assert "Timbre de prueba" in page


def test_a_real_stamp_is_not_marked_as_a_test(app, client, demo):
    with app.app_context():
        real = stamping().providers.deployment()
        stamping().providers.replace_deployment(Production(real))
    invoice_ticket(client, demo["fresh"][0])
    with app.app_context():
        invoice = only_invoice()
        assert invoice.status is InvoiceStatus.STAMPED and not invoice.test_stamp
        assert "SIN VALIDEZ" not in text_of(files_with_pdf(db.session, invoice).pdf)
        assert "SIN VALIDEZ" not in db.session.scalars(select(MailMessage)).one().body_text


def test_an_issuer_that_cannot_sign_reserves_nothing(app, client, demo, staff, admin_login):
    """A CSD that no longer decrypts (DATA_KEY changed): the customer is told at once, the
    ticket stays invoiceable, no folio is used, and the staff's dashboard says what is wrong."""
    t = demo["fresh"][0]
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        folio = issuer.next_folio
        issuer.csd_key_encrypted = b"sealed-under-another-key"
        db.session.commit()
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 503
    assert "no puede emitir facturas en este momento" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.OPEN
        assert db.session.scalar(select(Issuer).where(Issuer.slug == "demo")).next_folio == folio
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    home = admin.get("/admin/").get_data(as_text=True)
    assert "no se puede descifrar con la DATA_KEY" in home


def test_a_failing_email_never_leaves_the_stamp_unrecorded(app, client, demo):
    """A legal name saved before the forms checked it (250 characters) once made every
    stamping fail after the PAC stamped; the stamp is recorded and the email queued with a
    subject that fits its header."""
    with app.app_context():
        db.session.execute(update(Issuer).values(legal_name="TIENDAS " + "GAVIOTA " * 30))
        db.session.commit()
    invoice_ticket(client, demo["fresh"][0])
    with app.app_context():
        assert only_invoice().status is InvoiceStatus.STAMPED
        mail = db.session.scalars(select(MailMessage)).one()
        assert len(mail.subject) <= 255 and mail.subject.endswith("…")


def test_an_after_stamp_step_that_fails_keeps_the_stamp(app, client, demo, caplog):
    def broken(session, invoice):
        raise RuntimeError("the outbox is broken")

    with app.app_context():
        stamping().mail = broken
    with caplog.at_level(logging.ERROR):
        invoice_ticket(client, demo["fresh"][0])
    with app.app_context():
        invoice = only_invoice()
        assert invoice.status is InvoiceStatus.STAMPED and invoice.uuid
    assert any("the stamp is kept" in r.getMessage() for r in caplog.records)


def test_every_pac_call_is_logged_without_the_document(app, client, demo, caplog):
    with caplog.at_level(logging.INFO, logger="webapp.services.stamping"):
        invoice_ticket(client, demo["fresh"][0])
    calls = [r for r in caplog.records if getattr(r, "call", None) == "stamp"]
    assert len(calls) == 1
    assert (calls[0].provider, calls[0].outcome) == ("sandbox", "ok")
    assert calls[0].duration_ms >= 0
    assert "<cfdi" not in calls[0].getMessage() and "Comprobante" not in calls[0].getMessage()


def test_a_press_that_sees_its_own_form_invoiced_gets_the_same_invoice(
    app, client, demo, monkeypatch
):
    """Two presses of one form: the second checked its key before the first committed, then
    found the ticket invoiced — by the first press. It answers with that invoice, not 422."""
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    first = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert first.status_code == 303
    real = issue.by_key
    calls = []

    def not_yet_committed(session, k):  # the first look happened before the first commit
        calls.append(k)
        return None if len(calls) == 1 else real(session, k)

    monkeypatch.setattr(issue, "by_key", not_yet_committed)
    second = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert second.status_code == 303, second.get_data(as_text=True)
    assert second.headers["Location"] == first.headers["Location"]


def test_a_press_on_an_invoice_still_stamping_is_shown_the_waiting_page(app, client, demo):
    """The second press does not hold a worker for the first one's PAC call, nor call the
    PAC again: it is sent to the page that waits."""
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with app.app_context():
        request = issue.Request(t["branch_id"], [t["id"]], RECEPTOR_DATA, "01", EMAIL, key)
        invoice = issue.reserve(db.session, request, datetime.now(UTC))
        invoice.status = InvoiceStatus.STAMPING  # another process is at the PAC with it
        db.session.commit()
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303
    waiting = client.get(r.headers["Location"])
    assert waiting.status_code == 202
    assert "Estamos terminando su factura" in waiting.get_data(as_text=True)


def test_two_first_invoices_of_one_account_keep_one_profile(app, demo):
    """The second request creating the account's profile (the first committed meanwhile)
    is rolled back to its savepoint, not answered with a 500."""
    from flask_login import login_user

    from webapp.accounts.session import SignedIn
    from webapp.invoicing import profile
    from webapp.models import Account, CustomerProfile

    with app.app_context():
        account_id = verified_account(RECEPTOR_DATA.rfc, EMAIL)
        db.session.commit()
    with app.test_request_context():
        login_user(SignedIn(db.session.get(Account, account_id), "a-session-token"))
        profile.remember(RECEPTOR_DATA, EMAIL)
        real_scalar = db.session.scalar
        seen = []

        def missed_the_other(statement, *args, **kwargs):  # read before the other committed
            seen.append(statement)
            return None if len(seen) == 1 else real_scalar(statement, *args, **kwargs)

        db.session.scalar = missed_the_other
        try:
            profile.remember(RECEPTOR_DATA, EMAIL)  # no IntegrityError escapes
        finally:
            del db.session.scalar
        count = db.session.scalar(
            select(func.count())
            .select_from(CustomerProfile)
            .where(CustomerProfile.account_id == account_id)
        )
        assert count == 1
