"""Replacing an invoice with errors (webapp/issuing/replace.py): the replacement names the
original (CfdiRelacionados, TipoRelacion 04) and is stamped first, then the original is
cancelled with motive 01 naming it; the tickets pass from one to the other, never held twice."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from lxml import etree
from sqlalchemy import func, select

from tests.flows import (
    INGRID,
    LARGE,
    SMALL,
    load,
    make_invoice,
    now,
    sandbox,
    text_of,
    ticket_states,
)
from webapp.cfdi.pac import PacError
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.extensions import db
from webapp.fiscal.receptor import Receptor
from webapp.issuing import cancel, issue, replace
from webapp.models import CancelRequest, CancelStatus, Invoice, InvoiceStatus, TicketStatus
from webapp.services.stamping import files_with_pdf
from webapp.wiring import stamping

CFDI = {"cfdi": "http://www.sat.gob.mx/cfd/4"}
FIXED = Receptor(INGRID.rfc, "INGRID XODAR JIMENEZ", "76028", "612", "G01")


class NoCancelPac(SandboxPac):
    """The sandbox, except that it refuses every cancellation (as a PAC may, for a while)."""

    def cancel(self, xml, motive, replacement_uuid=None):
        raise PacError("305", "Servicio de cancelación no disponible", retryable=False)


class RefusingStampPac(SandboxPac):
    def stamp(self, xml):
        raise PacError("301", "XML mal formado", retryable=False)


def changes(receptor: Receptor = FIXED, forma_pago: str = "04", email=None) -> replace.Changes:
    return replace.Changes(receptor=receptor, forma_pago=forma_pago, email=email)


def do_replace(app, original: Invoice, pac=None, key=None, **kwargs) -> Invoice:
    """Replace `original` through the app's stamping service, whose provider is `pac` (the
    test's sandbox by default)."""
    stamping().providers.replace_deployment(pac or sandbox(app))
    return replace.replace(
        db.session,
        original,
        kwargs.pop("what", None) or changes(),
        now(),
        key=key or secrets.token_hex(8),
        stamping=stamping(),
        **kwargs,
    )


def related(xml: bytes) -> tuple[str, list[str]]:
    root = etree.fromstring(xml)
    [node] = root.findall("cfdi:CfdiRelacionados", CFDI)
    return node.get("TipoRelacion"), [
        r.get("UUID") for r in node.findall("cfdi:CfdiRelacionado", CFDI)
    ]


def test_replacement_names_the_original_then_the_original_is_cancelled(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        original = load(public_id)
        new = do_replace(app, original)
        original = load(public_id)
        assert new.status is InvoiceStatus.STAMPED and new.uuid != original.uuid
        assert new.folio > original.folio and new.replaces_id == original.id
        assert related(new.xml) == ("04", [original.uuid])
        receptor = etree.fromstring(new.xml).find("cfdi:Receptor", CFDI)
        assert (receptor.get("Nombre"), receptor.get("RegimenFiscalReceptor")) == (
            "INGRID XODAR JIMENEZ",
            "612",
        )
        assert receptor.get("UsoCFDI") == "G01"
        assert etree.fromstring(new.xml).get("FormaPago") == "04"
        assert (new.total, new.subtotal) == (original.total, original.subtotal)
        # A total under 1,000: cancelled at once, motive 01 naming the replacement.
        assert original.status is InvoiceStatus.CANCELLED
        assert (original.cancel_motive, original.cancel_replacement_uuid) == ("01", new.uuid)
        assert ticket_states(original) == [(TicketStatus.INVOICED, False)]
        assert ticket_states(new) == [(TicketStatus.INVOICED, True)]
        assert new.account_id == original.account_id
        # Its PDF says what it replaces.
        text = " ".join(text_of(files_with_pdf(db.session, new).pdf).split())
        assert "Tipo de relación: 04 - Sustitución de los CFDI previos" in text
        assert original.uuid in text


def test_while_the_receptor_decides_the_original_keeps_the_tickets(app, demo):
    public_id = make_invoice(app, LARGE)
    with app.app_context():
        pac = sandbox(app)
        new = do_replace(app, load(public_id), pac=pac)
        original = load(public_id)
        assert original.cancel_status is CancelStatus.PENDING
        assert new.status is InvoiceStatus.STAMPED
        assert ticket_states(original) == [(TicketStatus.INVOICED, True)]
        assert ticket_states(new) == [(TicketStatus.INVOICED, False)]
        pac.receptor_answers(original.uuid, accept=True)
        cancel.refresh(db.session, original, pac, now())
        assert load(public_id).status is InvoiceStatus.CANCELLED
        assert ticket_states(load(public_id)) == [(TicketStatus.INVOICED, False)]
        assert ticket_states(new) == [(TicketStatus.INVOICED, True)]


def test_asking_twice_issues_one_replacement(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        pac = NoCancelPac(app.config["PAC_SANDBOX_DIR"])
        with pytest.raises(cancel.CancelError, match="no disponible"):
            do_replace(app, load(public_id), pac=pac, key="k1")
        # The replacement is stamped; the original still valid, its cancellation refused.
        first = replace.replacement_of(db.session, load(public_id))
        assert first.status is InvoiceStatus.STAMPED
        assert load(public_id).status is InvoiceStatus.STAMPED
        # Asked again (another click, another form): the same replacement, now cancelling.
        again = do_replace(app, load(public_id), key="k2")
        assert again.id == first.id
        assert load(public_id).status is InvoiceStatus.CANCELLED
        count = db.session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.replaces_id == again.replaces_id)
        )
        assert count == 1


def test_a_refused_replacement_changes_nothing(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        pac = RefusingStampPac(app.config["PAC_SANDBOX_DIR"])
        with pytest.raises(issue.StampingFailed):
            do_replace(app, load(public_id), pac=pac)
        original = load(public_id)
        assert original.status is InvoiceStatus.STAMPED and original.cancel_status is None
        # Its tickets stay invoiced by the original (the failed replacement never held them).
        assert ticket_states(original) == [(TicketStatus.INVOICED, True)]
        assert replace.replacement_of(db.session, original) is None


@pytest.mark.parametrize("case", ["global", "cancelled", "pending", "other_rfc"])
def test_what_cannot_be_replaced(app, demo, case):
    public_id = make_invoice(app, LARGE if case == "pending" else SMALL)
    with app.app_context():
        original = load(public_id)
        what = None
        if case == "global":
            original.is_global = True
            db.session.commit()
        elif case in ("cancelled", "pending"):
            cancel.request_cancel(db.session, original, "02", sandbox(app), now())
        else:
            what = changes(Receptor("EKU9003173C9", "ESCUELA KEMPER URGATE", "42501", "601", "G03"))
        with pytest.raises(replace.ReplaceError) as caught:
            do_replace(app, load(public_id), what=what)
        assert (
            caught.value.code
            == {
                "global": "global",
                "cancelled": "not_stamped",
                "pending": "cancel_pending",
                "other_rfc": "other_rfc",
            }[case]
        )
        assert replace.replacement_of(db.session, load(public_id)) is None


def test_motive_01_takes_only_a_replacement_of_this_invoice(app, demo):
    old, other = make_invoice(app, SMALL), make_invoice(app, SMALL)
    with app.app_context():
        with pytest.raises(cancel.CancelError, match="no sustituye a esta") as caught:
            cancel.request_cancel(
                db.session, load(old), "01", sandbox(app), now(), load(other).uuid
            )
        assert caught.value.field == "replacement_uuid"
        assert load(old).status is InvoiceStatus.STAMPED


def test_motive_01_replacement_must_be_issued_before_the_request(app, demo):
    public_id = make_invoice(app, SMALL)
    with app.app_context():
        pac = NoCancelPac(app.config["PAC_SANDBOX_DIR"])
        with pytest.raises(cancel.CancelError):
            do_replace(app, load(public_id), pac=pac)
        new = replace.replacement_of(db.session, load(public_id))
        before = new.stamped_at - timedelta(minutes=5)
        with pytest.raises(cancel.CancelError, match="antes de pedir"):
            cancel.request_cancel(db.session, load(public_id), "01", sandbox(app), before, new.uuid)
        # Named by hand, in lower case, once it exists: accepted.
        cancel.request_cancel(
            db.session, load(public_id), "01", sandbox(app), now(), new.uuid.lower()
        )
        assert load(public_id).status is InvoiceStatus.CANCELLED
        assert ticket_states(new) == [(TicketStatus.INVOICED, True)]
        history = db.session.scalars(
            select(CancelRequest).where(CancelRequest.invoice_id == new.replaces_id)
        ).all()
        assert [h.status for h in history].count(CancelStatus.CANCELLED) == 1
