"""A stamping whose answer was lost is resolved by `flask invoices reconcile`, never twice."""

from __future__ import annotations

import pytest
from lxml import etree
from sqlalchemy import select

from tests.test_invoicing import start, ticket_data
from webapp.cfdi.pac import Pac, PacError
from webapp.extensions import db
from webapp.invoicing import services
from webapp.models import Invoice, InvoiceStatus, Ticket, TicketStatus

TFD = "{http://www.sat.gob.mx/TimbreFiscalDigital}TimbreFiscalDigital"


class LostAnswer(Pac):
    """The provider stamps (or not), then the connection drops before the answer arrives."""

    def __init__(self, real, stamps: bool):
        self.real, self.stamps, self.calls = real, stamps, 0

    def stamp(self, xml):
        self.calls += 1
        if self.stamps:
            self.real.stamp(xml)
        raise PacError("timeout", "no answer from the provider", retryable=True)

    def recover(self, xml):
        return self.real.recover(xml)


@pytest.mark.parametrize("stamped_there", [True, False], ids=["stamped-there", "never-stamped"])
def test_reconcile_resolves_a_lost_answer(app, client, demo, stamped_there):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with app.app_context():
        real = services.pac()
        app.extensions["pac"] = LostAnswer(real, stamps=stamped_there)
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 503
    assert "no respondió" in r.get_data(as_text=True)
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPING
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.INVOICED
        before = real.recover(invoice.xml)
        assert (before is not None) == stamped_there
        app.extensions["pac"] = real

    result = app.test_cli_runner().invoke(args=["invoices", "reconcile", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert ("recorded now: 1" if stamped_there else "stamped now: 1") in result.output

    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPED and invoice.pdf.startswith(b"%PDF")
        uuid = etree.fromstring(invoice.xml).find(f".//{TFD}").get("UUID")
        assert invoice.uuid == uuid
        if stamped_there:
            assert uuid == before.uuid  # the provider's stamp, not a second one
    # The customer who retries gets the same invoice.
    again = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert again.status_code == 303
    assert uuid in client.get(again.headers["Location"]).get_data(as_text=True)
    # A second reconcile finds nothing to do.
    result = app.test_cli_runner().invoke(args=["invoices", "reconcile", "--older-than", "0"])
    assert "recorded now: 0; stamped now: 0; failed (tickets freed): 0; " in result.output


def test_a_refusal_frees_the_tickets_and_keeps_the_folio(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])

    class Refuses(Pac):
        def stamp(self, xml):
            raise PacError("301", "XML mal formado", retryable=False)

        def recover(self, xml):
            return None

    with app.app_context():
        real = services.pac()
        app.extensions["pac"] = Refuses()
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 502 and "rechazó el comprobante" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.OPEN
        app.extensions["pac"] = real
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
        real = services.pac()
        app.extensions["pac"] = LostAnswer(real, stamps=False)
    assert client.post("/facturar/demo/ticket", data=ticket_data(t, key)).status_code == 503

    class Down(Pac):
        def stamp(self, xml):
            raise PacError("timeout", "no answer", retryable=True)

        def recover(self, xml):
            raise PacError("timeout", "no answer", retryable=True)

    with app.app_context():
        app.extensions["pac"] = Down()
    result = app.test_cli_runner().invoke(args=["invoices", "reconcile", "--older-than", "0"])
    assert "left for the next run: 1" in result.output
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.status is InvoiceStatus.STAMPING
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.INVOICED
        app.extensions["pac"] = real
