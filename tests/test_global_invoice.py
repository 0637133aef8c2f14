"""Factura global: periods, the CFDI it stamps, and its correction after an individual invoice."""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from lxml import etree
from sqlalchemy import func, select

from tests.flows import last_closed_day, period_tickets, start, ticket_data
from webapp.cfdi.amounts import totals
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.cfdi.draft import Draft, GlobalInfo
from webapp.cfdi.xsd import validate
from webapp.extensions import db
from webapp.issuing import global_invoice as gi
from webapp.models import (
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    Ticket,
    TicketStatus,
    invoice_ticket,
)
from webapp.services.stamping import files_with_pdf
from webapp.wiring import stamping

CFDI = "{http://www.sat.gob.mx/cfd/4}"


# --- Periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("periodicity", "day", "start", "end", "months"),
    [
        ("01", date(2026, 3, 10), date(2026, 3, 10), date(2026, 3, 11), "03"),
        # Weeks run Monday to Sunday and stop at the month's end.
        ("02", date(2026, 3, 11), date(2026, 3, 9), date(2026, 3, 16), "03"),
        ("02", date(2026, 3, 31), date(2026, 3, 30), date(2026, 4, 1), "03"),
        ("02", date(2026, 4, 2), date(2026, 4, 1), date(2026, 4, 6), "04"),
        ("03", date(2026, 2, 15), date(2026, 2, 1), date(2026, 2, 16), "02"),
        ("03", date(2026, 2, 16), date(2026, 2, 16), date(2026, 3, 1), "02"),
        ("04", date(2026, 12, 31), date(2026, 12, 1), date(2027, 1, 1), "12"),
        ("05", date(2026, 1, 20), date(2026, 1, 1), date(2026, 3, 1), "13"),
        ("05", date(2026, 4, 1), date(2026, 3, 1), date(2026, 5, 1), "14"),
        ("05", date(2026, 12, 5), date(2026, 11, 1), date(2027, 1, 1), "18"),
    ],
)
def test_periods_and_their_months(periodicity, day, start, end, months):
    period = gi.period_of(periodicity, day)
    assert (period.start, period.end, period.months, period.year) == (start, end, months, 2026)


def test_a_period_is_over_at_midnight_in_mexico_city():
    period = gi.period_of("01", date(2026, 3, 10))
    midnight = datetime(2026, 3, 11, tzinfo=MEXICO_CITY)
    assert not period.is_over(midnight - timedelta(seconds=1))
    assert period.is_over(midnight)
    assert period.utc_bounds()[1] == datetime(2026, 3, 11, 6, tzinfo=UTC)


def test_global_info_checks_its_catalogs():
    assert GlobalInfo("05", "13", 2026).meses == "13"
    for bad in (("05", "01", 2026), ("04", "13", 2026), ("06", "01", 2026)):
        with pytest.raises(ValueError):
            GlobalInfo(*bad)


def test_only_the_publico_en_general_gets_informacion_global():
    line = gi._concept(SimpleNamespace(ticket_number="T1"), Decimal("10"), _priced("0.16"))
    with pytest.raises(ValueError):
        Draft(
            emisor_rfc="EKU9003173C9",
            emisor_nombre="X",
            emisor_regimen="601",
            lugar_expedicion="42501",
            serie="A",
            folio=1,
            fecha=datetime.now(UTC),
            receptor_rfc="XOJI740919U48",
            receptor_nombre="X",
            receptor_cp="42501",
            receptor_regimen="616",
            uso_cfdi="S01",
            forma_pago="01",
            lines=(line,),
            informacion_global=GlobalInfo("01", "01", 2026),
        )


# --- Conceptos -------------------------------------------------------------------------------


def _priced(rate, quantity="1", price="10", objeto="02", factor="Tasa"):
    return SimpleNamespace(
        quantity=Decimal(quantity),
        unit_price=Decimal(price),
        objeto_imp=objeto,
        tax_factor=factor if objeto == "02" else None,
        tax_rate=None if rate is None else Decimal(rate),
    )


def test_one_concept_per_ticket_and_tax_rate():
    ticket = SimpleNamespace(
        ticket_number="A-1",
        lines=[
            _priced("0.16", "2", "10.50"),
            _priced("0.16", "1", "3.25"),
            _priced("0.000000", "1", "20"),
            _priced(None, "1", "5", factor="Exento"),
        ],
    )
    concepts = gi.ticket_concepts(ticket)
    assert [(c.unit_price, c.tax_rate, c.tax_factor) for c in concepts] == [
        (Decimal("24.25"), Decimal("0.16"), "Tasa"),
        (Decimal("20"), Decimal("0"), "Tasa"),
        (Decimal("5"), None, "Exento"),
    ]
    assert {(c.clave_prod_serv, c.clave_unidad, c.quantity, c.description) for c in concepts} == {
        ("01010101", "ACT", Decimal(1), "Venta")
    }
    assert {c.no_identificacion for c in concepts} == {"A-1"}
    assert totals(concepts).total == totals(ticket.lines).total


def test_lines_stay_apart_when_the_summed_tax_would_round_differently():
    # 0.03 × 16 % rounds to 0.00 twice, but 0.06 × 16 % to 0.01.
    ticket = SimpleNamespace(
        ticket_number="B-2", lines=[_priced("0.16", "1", "0.03"), _priced("0.16", "1", "0.03")]
    )
    concepts = gi.ticket_concepts(ticket)
    assert len(concepts) == 2
    assert totals(concepts).total == totals(ticket.lines).total == Decimal("0.06")


# --- Stamping --------------------------------------------------------------------------------


def _issue(branch, period, now, **kwargs):
    return gi.issue_global(
        db.session,
        branch,
        period,
        now,
        stamping=stamping(),
        **kwargs,
    )


def test_global_invoice_of_a_day(app, demo):
    with app.app_context():
        branch, period, now = last_closed_day(app)
        tickets = period_tickets(branch, period)
        assert tickets and all(t.status is TicketStatus.OPEN for t in tickets)
        preview = gi.preview(db.session, branch, period)
        assert preview.tickets == len(tickets)
        assert preview.total == sum(t.total for t in tickets)

        invoice = _issue(branch, period, now)
        assert invoice.status is InvoiceStatus.STAMPED, invoice.error
        validate(invoice.xml)  # SAT's XSD, TimbreFiscalDigital included
        root = etree.fromstring(invoice.xml)
        info = root.find(f"{CFDI}InformacionGlobal")
        assert dict(info.attrib) == {
            "Periodicidad": "01",
            "Meses": f"{period.start.month:02d}",
            "Año": str(period.start.year),
        }
        receptor = root.find(f"{CFDI}Receptor")
        assert dict(receptor.attrib) == {
            "Rfc": "XAXX010101000",
            "Nombre": "PUBLICO EN GENERAL",
            "DomicilioFiscalReceptor": root.get("LugarExpedicion"),
            "RegimenFiscalReceptor": "616",
            "UsoCFDI": "S01",
        }
        assert root.get("LugarExpedicion") == branch.cp
        assert (root.get("MetodoPago"), root.get("FormaPago")) == ("PUE", "01")
        concepts = root.findall(f"{CFDI}Conceptos/{CFDI}Concepto")
        assert {c.get("NoIdentificacion") for c in concepts} == {t.ticket_number for t in tickets}
        assert len(concepts) >= len(tickets)
        for c in concepts:
            assert (c.get("ClaveProdServ"), c.get("ClaveUnidad"), c.get("Cantidad")) == (
                "01010101",
                "ACT",
                "1",
            )
            assert c.get("Descripcion") == "Venta"
        assert Decimal(root.get("Total")) == sum(t.total for t in tickets) == invoice.total
        assert files_with_pdf(db.session, invoice).pdf.startswith(b"%PDF")

        db.session.expire_all()
        assert {t.status for t in period_tickets(branch, period)} == {TicketStatus.IN_GLOBAL}
        linked = db.session.scalar(
            select(func.count()).where(
                invoice_ticket.c.invoice_id == invoice.id, invoice_ticket.c.active
            )
        )
        assert linked == len(tickets)

        # The same request again gives the same invoice; a new one finds nothing left.
        assert _issue(branch, period, now, key=period.key(branch.id)).id == invoice.id
        with pytest.raises(gi.GlobalError) as error:
            _issue(branch, period, now)
        assert error.value.code == "no_tickets"
        assert db.session.scalar(select(func.count()).where(Invoice.is_global)) == 1


def _paid(total: str, forma_pago: str | None = None):
    return SimpleNamespace(total=Decimal(total), forma_pago=forma_pago)


@pytest.mark.parametrize(
    ("tickets", "expected"),
    [
        ([], "01"),
        ([_paid("10"), _paid("20")], "01"),  # none recorded: efectivo, as before
        ([_paid("50", "04"), _paid("30"), _paid("30", "01")], "01"),  # 60 in cash beats 50
        ([_paid("100", "04"), _paid("30"), _paid("30", "28"), _paid("30", "28")], "04"),
        ([_paid("40", "28"), _paid("40", "04"), _paid("10")], "04"),  # a tie: the lower code
        ([_paid("25.50", "03"), _paid("25.50")], "01"),
    ],
)
def test_forma_pago_is_the_one_of_the_greatest_amount(tickets, expected):
    assert gi.forma_pago(tickets) == expected


def test_global_forma_pago_from_tickets_paid_in_several_ways(app, demo):
    """Debit-card tickets that add up to more than half of the day: FormaPago 28, though
    cash (unrecorded) and credit-card tickets are there too."""
    with app.app_context():
        branch, period, now = last_closed_day(app)
        tickets = sorted(period_tickets(branch, period), key=lambda t: t.total, reverse=True)
        assert len(tickets) >= 3
        half = sum(t.total for t in tickets) / 2
        paid_by_card = Decimal(0)
        for ticket in tickets:
            if paid_by_card <= half:
                ticket.forma_pago, paid_by_card = "28", paid_by_card + ticket.total
            else:
                ticket.forma_pago = None
        tickets[-1].forma_pago = "04"
        assert {t.forma_pago for t in tickets} == {"28", None, "04"}
        db.session.commit()

        invoice = _issue(branch, period, now)
        assert invoice.status is InvoiceStatus.STAMPED, invoice.error
        root = etree.fromstring(invoice.xml)
        assert (root.get("MetodoPago"), root.get("FormaPago")) == ("PUE", "28")
        assert invoice.forma_pago == "28"


def test_a_period_not_over_cannot_be_invoiced(app, demo):
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.code == "CENTRO"))
        now = datetime.now(UTC)
        with pytest.raises(gi.GlobalError) as error:
            _issue(branch, gi.period_of("04", gi.local_today(now)), now)
        assert error.value.code == "not_over"
        with pytest.raises(gi.GlobalError) as error:
            _issue(branch, gi.period_of("05", date(2025, 1, 1)), now)
        assert error.value.code == "bimonthly_needs_rif"
        assert db.session.scalar(select(func.count()).where(Invoice.is_global)) == 0


def test_a_period_without_open_tickets_says_so(app, demo):
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.code == "CENTRO"))
        now = datetime.now(UTC)
        with pytest.raises(gi.GlobalError) as error:
            _issue(branch, gi.period_of("01", date(2024, 1, 1) + timedelta(days=400)), now)
        assert error.value.code == "no_tickets"


def _global_with_customer_invoice(app, client):
    """A stamped global of a closed day; then a customer invoices one of its tickets."""
    with app.app_context():
        branch, period, now = last_closed_day(app)
        invoice = _issue(branch, period, now)
        assert invoice.status is InvoiceStatus.STAMPED
        ticket = period_tickets(branch, period)[-1]
        t = {
            "id": ticket.id,
            "order": ticket.order_number,
            "number": ticket.ticket_number,
            "total": ticket.total,
            "branch_id": branch.id,
        }
        ids = (invoice.id, branch.id, period)
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    return ids, t


def test_invoicing_a_ticket_of_a_global_flags_the_global(app, client, demo):
    (global_id, _branch_id, _period), t = _global_with_customer_invoice(app, client)
    with app.app_context():
        glob = db.session.get(Invoice, global_id)
        assert glob.needs_correction and glob.status is InvoiceStatus.STAMPED
        assert db.session.get(Ticket, t["id"]).status is TicketStatus.INVOICED
        active = db.session.execute(
            select(invoice_ticket.c.invoice_id).where(
                invoice_ticket.c.ticket_id == t["id"], invoice_ticket.c.active
            )
        ).scalars()
        (holder,) = list(active)
        assert holder != global_id
        assert db.session.get(Invoice, holder).receptor_rfc != "XAXX010101000"


def test_refuse_policy_keeps_the_ticket_in_the_global(app, client, demo):
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        issuer.global_policy = "refuse"
        db.session.commit()
        branch, period, now = last_closed_day(app)
        invoice = _issue(branch, period, now)
        ticket = period_tickets(branch, period)[-1]
        t = {
            "order": ticket.order_number,
            "number": ticket.ticket_number,
            "total": ticket.total,
            "branch_id": branch.id,
        }
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 422
    with app.app_context():
        assert not db.session.get(Invoice, invoice.id).needs_correction


def test_a_failed_global_frees_its_tickets(app, demo):
    from webapp.cfdi.pac import PacError

    class Refuses:
        name, test = "refuses", True

        def stamp(self, xml):
            raise PacError("301", "XML mal formado", retryable=False)

        def recover(self, xml):
            return None

        def with_signer(self, signer):
            return self

    with app.app_context():
        stamping().providers.replace_deployment(Refuses())
        branch, period, now = last_closed_day(app)
        count = len(period_tickets(branch, period))
        from webapp.issuing.issue import StampingFailed

        with pytest.raises(StampingFailed):
            gi.issue_global(
                db.session,
                branch,
                period,
                now,
                stamping=stamping(),
            )
        db.session.expire_all()
        assert {t.status for t in period_tickets(branch, period)} == {TicketStatus.OPEN}
        # The folio is reused by the next global, which takes the tickets.
        stamping().providers.replace_deployment(None)
        again = _issue(branch, period, now)
        assert again.status is InvoiceStatus.STAMPED and again.is_global
        assert db.session.scalar(select(func.count()).where(Invoice.is_global)) == 1
        assert len(gi.held_tickets(db.session, again)) == count


CANCEL_READY = importlib.util.find_spec("webapp.issuing.cancel") is not None


@pytest.mark.skipif(not CANCEL_READY, reason="webapp.issuing.cancel is not there yet")
def test_correction_cancels_with_motive_04_and_reissues_without_the_sale(app, client, demo):
    (global_id, branch_id, period), t = _global_with_customer_invoice(app, client)
    with app.app_context():
        glob = db.session.get(Invoice, global_id)
        before = gi.held_tickets(db.session, glob)
        db.session.get(Branch, branch_id)
        new = gi.correct(
            db.session,
            glob,
            datetime.now(UTC),
            stamping=stamping(),
        )
        db.session.expire_all()
        glob = db.session.get(Invoice, global_id)
        assert glob.cancel_motive == "04" and glob.cancel_status is not None
        assert not glob.needs_correction
        assert new.status is InvoiceStatus.STAMPED and new.folio != glob.folio
        assert (new.global_period_start, new.global_periodicity) == (period.start, "01")
        held = gi.held_tickets(db.session, new)
        assert {x.id for x in held} == {x.id for x in before}
        assert t["id"] not in {x.id for x in held}
        assert {x.status for x in held} == {TicketStatus.IN_GLOBAL}
        root = etree.fromstring(new.xml)
        numbers = {c.get("NoIdentificacion") for c in root.iter(f"{CFDI}Concepto")}
        assert t["number"] not in numbers
        assert Decimal(root.get("Total")) == sum(x.total for x in held)
        assert root.find(f"{CFDI}InformacionGlobal").get("Periodicidad") == "01"
        # Once corrected, there is nothing more to correct.
        with pytest.raises(gi.GlobalError):
            gi.correct(
                db.session,
                glob,
                datetime.now(UTC),
                stamping=stamping(),
            )


def test_monthly_global_of_last_month(app, demo):
    """A whole month of a branch: Meses is the month, every open ticket of it is in."""
    with app.app_context():
        now = datetime.now(UTC)
        first = gi.local_today(now).replace(day=1)
        period = gi.period_of("04", first - timedelta(days=1))
        branch = db.session.scalar(select(Branch).where(Branch.code == "POLANCO"))
        tickets = period_tickets(branch, period)
        assert len(tickets) > 20
        invoice = _issue(branch, period, now)
        assert invoice.status is InvoiceStatus.STAMPED, invoice.error
        root = etree.fromstring(invoice.xml)
        info = root.find(f"{CFDI}InformacionGlobal")
        assert (info.get("Periodicidad"), info.get("Meses"), info.get("Año")) == (
            "04",
            f"{period.start.month:02d}",
            str(period.start.year),
        )
        assert Decimal(root.get("Total")) == sum(t.total for t in tickets)
        assert Decimal(root.get("SubTotal")) == invoice.subtotal
        numbers = {c.get("NoIdentificacion") for c in root.iter(f"{CFDI}Concepto")}
        assert numbers == {t.ticket_number for t in tickets}
        # Other branches' tickets of the month are untouched.
        others = db.session.scalar(
            select(func.count()).where(
                Ticket.branch_id != branch.id, Ticket.status == TicketStatus.IN_GLOBAL
            )
        )
        assert others == 0
