"""Every invoice left on its way to the PAC is finished or released, never stamped twice, and
every stamp recorded queues its email: a lost answer, a process killed in draft or signed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from sqlalchemy import func, select, update

from tests.flows import RECEPTOR, start, ticket_data
from webapp.cfdi.pac import Pac, PacError
from webapp.extensions import db
from webapp.issuing import issue
from webapp.models import Invoice, InvoiceStatus, MailMessage, Ticket, TicketStatus
from webapp.services.stamping import files_with_pdf
from webapp.wiring import stamping

TFD = "{http://www.sat.gob.mx/TimbreFiscalDigital}TimbreFiscalDigital"


class LostAnswer(Pac):
    """The provider stamps (or not), then the connection drops before the answer arrives."""

    name = "lost-answer"

    def __init__(self, real, stamps: bool):
        self.real, self.stamps, self.calls = real, stamps, 0

    def stamp(self, xml):
        self.calls += 1
        if self.stamps:
            self.real.stamp(xml)
        raise PacError("timeout", "no answer from the provider", retryable=True)

    def recover(self, xml):
        return self.real.recover(xml)


def use_provider(app, pac):
    with app.app_context():
        stamping().providers.replace_deployment(pac)


def reconcile(app, older_than: int = 0) -> str:
    result = app.test_cli_runner().invoke(
        args=["invoices", "reconcile", "--older-than", str(older_than)]
    )
    assert result.exit_code == 0, result.output
    return result.output


def mails_to(app, address: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(MailMessage).where(MailMessage.to_addrs == address)
        )


@pytest.mark.parametrize("stamped_there", [True, False], ids=["stamped-there", "never-stamped"])
def test_reconcile_resolves_a_lost_answer(app, client, demo, stamped_there):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with app.app_context():
        real = stamping().providers.deployment()
    use_provider(app, LostAnswer(real, stamps=stamped_there))
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303  # to the page that waits for the invoice
    waiting = client.get(r.headers["Location"])
    assert waiting.status_code == 202
    assert "Estamos terminando su factura" in waiting.get_data(as_text=True)
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPING
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.INVOICED
        before = real.recover(invoice.xml)
        assert (before is not None) == stamped_there
    assert mails_to(app, RECEPTOR["email"]) == 0
    use_provider(app, real)

    output = reconcile(app)
    assert ("recorded now: 1" if stamped_there else "stamped now: 1") in output

    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPED
        assert files_with_pdf(db.session, invoice).pdf.startswith(b"%PDF")
        assert invoice.test_stamp  # the sandbox's stamp, recorded as a test
        uuid = etree.fromstring(invoice.xml).find(f".//{TFD}").get("UUID")
        assert invoice.uuid == uuid
        if stamped_there:
            assert uuid == before.uuid  # the provider's stamp, not a second one
    assert mails_to(app, RECEPTOR["email"]) == 1  # reconcile queued the email
    # The page that waited now shows the invoice, and a retry of the form gets the same one.
    assert uuid in client.get(r.headers["Location"]).get_data(as_text=True)
    again = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert again.status_code == 303
    assert uuid in client.get(again.headers["Location"]).get_data(as_text=True)
    assert "recorded now: 0; stamped now: 0; released" in reconcile(app)
    assert mails_to(app, RECEPTOR["email"]) == 1


def test_the_waiting_page_tells_htmx_when_the_invoice_is_ready(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with app.app_context():
        real = stamping().providers.deployment()
    use_provider(app, LostAnswer(real, stamps=True))
    location = client.post("/facturar/demo/ticket", data=ticket_data(t, key)).headers["Location"]
    poll = {"HX-Request": "true", "HX-Target": "esperando"}
    waiting = client.get(location, headers=poll)
    assert waiting.status_code == 202 and 'id="esperando"' in waiting.get_data(as_text=True)
    assert "<html" not in waiting.get_data(as_text=True)  # only the fragment
    use_provider(app, real)
    reconcile(app)
    ready = client.get(location, headers=poll)
    assert ready.status_code == 204 and ready.headers["HX-Redirect"].endswith(location)


def test_a_refusal_frees_the_tickets_and_keeps_the_folio(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])

    class Refuses(Pac):
        name = "refuses"

        def stamp(self, xml):
            raise PacError("301", "XML mal formado", retryable=False)

        def recover(self, xml):
            return None

    with app.app_context():
        real = stamping().providers.deployment()
    use_provider(app, Refuses())
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 502 and "rechazó el comprobante" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.OPEN
    use_provider(app, real)
    # Trying again succeeds, with the folio of the failed attempt: no gap.
    key = start(client, t["branch_id"])
    assert client.post("/facturar/demo/ticket", data=ticket_data(t, key)).status_code == 303
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert (invoice.folio, invoice.status) == (1, InvoiceStatus.STAMPED)


def test_reconcile_leaves_it_when_the_provider_does_not_answer(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with app.app_context():
        real = stamping().providers.deployment()
    use_provider(app, LostAnswer(real, stamps=False))
    assert client.post("/facturar/demo/ticket", data=ticket_data(t, key)).status_code == 303

    class Down(Pac):
        name = "down"

        def stamp(self, xml):
            raise PacError("timeout", "no answer", retryable=True)

        def recover(self, xml):
            raise PacError("timeout", "no answer", retryable=True)

    use_provider(app, Down())
    assert "left for the next run: 1" in reconcile(app)
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPING
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.INVOICED
    use_provider(app, real)


def _left_in(app, t, state: InvoiceStatus, minutes_ago: int) -> int:
    """An invoice for ticket `t` left in `state` by a process killed there, `minutes_ago`."""
    from webapp.fiscal.receptor import Receptor

    with app.app_context():
        session = db.session
        receptor = Receptor("XOJI740919U48", "INGRID XODAR JIMENEZ", "76028", "612", "G03")
        request = issue.Request(
            t["branch_id"], [t["id"]], receptor, "01", RECEPTOR["email"], f"killed-{state}"
        )
        invoice = issue.reserve(session, request, datetime.now(UTC))
        if state is InvoiceStatus.SIGNED:
            from webapp.cfdi.builder import build, sign
            from webapp.cfdi.xsd import validate

            xml = sign(build(issue.draft_of(invoice)), stamping().signer_for(invoice.issuer))
            validate(xml)
            invoice.xml, invoice.status = xml, InvoiceStatus.SIGNED
        session.commit()
        long_ago = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        session.execute(update(Invoice).where(Invoice.id == invoice.id).values(updated_at=long_ago))
        session.commit()
        return invoice.id


@pytest.mark.parametrize("state", [InvoiceStatus.DRAFT, InvoiceStatus.SIGNED])
def test_reconcile_finishes_an_invoice_left_before_the_pac_call(app, demo, state):
    t = demo["fresh"][0]
    invoice_id = _left_in(app, t, state, minutes_ago=5)
    assert "stamped now: 1" in reconcile(app, older_than=60)
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert invoice.status is InvoiceStatus.STAMPED and invoice.uuid
        assert invoice.folio == 1
    assert mails_to(app, RECEPTOR["email"]) == 1


def test_reconcile_leaves_a_fresh_draft_alone(app, demo):
    t = demo["fresh"][0]
    invoice_id = _left_in(app, t, InvoiceStatus.DRAFT, minutes_ago=0)
    assert "stamped now: 0" in reconcile(app, older_than=60)
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status is InvoiceStatus.DRAFT


@pytest.mark.parametrize("state", [InvoiceStatus.DRAFT, InvoiceStatus.SIGNED])
def test_the_next_press_releases_an_invoice_abandoned_before_the_pac(app, client, demo, state):
    """A process killed after reserving left the ticket held: the customer's next press (a
    new form) invoices it, with the abandoned invoice's folio (no gap), stamped once."""
    t = demo["fresh"][0]
    abandoned = _left_in(app, t, state, minutes_ago=5)
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303, r.get_data(as_text=True)
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Su factura está lista" in page
    with app.app_context():
        invoices = db.session.scalars(select(Invoice)).all()
        assert [(i.folio, i.status) for i in invoices] == [(1, InvoiceStatus.STAMPED)]
        assert invoices[0].id == abandoned  # its row and folio, under a new public id
    assert mails_to(app, RECEPTOR["email"]) == 1


def test_a_press_while_another_draft_is_fresh_is_told_it_is_invoiced(app, client, demo):
    """A draft of a living process (just reserved) is not taken away from it."""
    t = demo["fresh"][0]
    _left_in(app, t, InvoiceStatus.DRAFT, minutes_ago=0)
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 422 and "ya fue facturado" in r.get_data(as_text=True)


def test_the_mail_worker_reconciles_by_itself(app, demo):
    """No cron needed: the worker finishes an abandoned invoice and sends its email."""
    import threading
    import time

    from webapp.mail.cli import app_sessions, reconcile_chore
    from webapp.mail.transport import transport_from_config
    from webapp.mail.worker import work

    invoice_id = _left_in(app, demo["fresh"][0], InvoiceStatus.SIGNED, minutes_ago=5)
    stop = threading.Event()
    chores = [(60.0, reconcile_chore(app))]
    worker = threading.Thread(
        target=work,
        args=(app_sessions(app), app.config, 0.1, stop, transport_from_config(app.config), chores),
    )
    worker.start()
    try:
        deadline = time.monotonic() + 120  # bounded; done in well under a second when idle
        while time.monotonic() < deadline:
            with app.app_context():
                if db.session.get(Invoice, invoice_id).status is InvoiceStatus.STAMPED:
                    break
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=120)
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status is InvoiceStatus.STAMPED
    assert mails_to(app, RECEPTOR["email"]) == 1


def test_the_waiting_page_settles_an_invoice_whose_process_died_at_the_pac(app, client, demo):
    """The customer need not wait for reconcile: past the PAC's timeout, the page that waits
    asks the provider itself (here: it had stamped it) and shows the invoice."""
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with app.app_context():
        real = stamping().providers.deployment()
    use_provider(app, LostAnswer(real, stamps=True))
    location = client.post("/facturar/demo/ticket", data=ticket_data(t, key)).headers["Location"]
    use_provider(app, real)
    assert client.get(location).status_code == 202  # its process may still be at the PAC
    with app.app_context():
        timeout = app.config.get("PAC_TIMEOUT_SECONDS") or 30
        long_ago = datetime.now(UTC) - timedelta(seconds=timeout + 60)
        db.session.execute(update(Invoice).values(updated_at=long_ago))
        db.session.commit()
    page = client.get(location)
    assert page.status_code == 200 and "Su factura está lista" in page.get_data(as_text=True)
    assert mails_to(app, RECEPTOR["email"]) == 1
