"""Stamp credits and the licence gate (#17 point 8, webapp/issuing/credits.py): a metered
issuer pays one credit per stamp in the transaction that reserves the folio, a failed stamp
gives it back, at zero credits or past the licence's grace period nothing is reserved (the
customer is told, staff see why and how to renew, past invoices stay at hand), warnings go
out once per threshold, and 20 concurrent stamps against 10 credits make exactly 10."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from tests.flows import (
    INGRID,
    PASSWORD,
    RFC,
    last_closed_day,
    make_invoice,
    sandbox,
    sign_in,
    stamp,
    start,
    ticket_data,
)
from webapp.cfdi.pac import PacError
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.extensions import db
from webapp.issuing import credits, issue, replace
from webapp.issuing import global_invoice as gi
from webapp.models import (
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    MailMessage,
    Ticket,
    TicketLine,
    TicketStatus,
)
from webapp.models.platform import PlatformSettings, StampMovement
from webapp.services.stamping import Result
from webapp.wiring import stamping

CUSTOMER_MESSAGE = "Este comercio no puede emitir facturas en este momento"


class RefusingPac(SandboxPac):
    def stamp(self, xml):
        raise PacError("301", "XML mal formado", retryable=False)


def demo_issuer() -> Issuer:
    return db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))


def meter(app, n: int | None = None, *, licence=None, **settings) -> None:
    """Make the demo issuer metered with `n` credits (an adjustment when 0), its licence
    expiring at `licence`, and the platform's settings."""
    with app.app_context():
        issuer = demo_issuer()
        if n is not None:
            credits.add(db.session, issuer, n, credits.PURCHASE if n else credits.ADJUSTMENT)
        issuer.licence_expires_at = licence
        if settings:
            db.session.add(PlatformSettings(**settings))
        db.session.commit()


def ledger() -> list[tuple[int, int, str]]:
    issuer = demo_issuer()
    return [
        (m.delta, m.balance, m.reason)
        for m in db.session.scalars(
            select(StampMovement)
            .where(StampMovement.issuer_id == issuer.id)
            .order_by(StampMovement.id)
        )
    ]


def assert_balanced() -> None:
    """Every movement's balance is the previous one plus its delta; the last is the
    issuer's."""
    running = 0
    rows = ledger()
    for delta, balance, _reason in rows:
        running += delta
        assert balance == running
    db.session.expire_all()
    assert demo_issuer().stamp_credits == (rows[-1][1] if rows else None)


def fresh_tickets(n: int, branch_code: str = "CENTRO") -> list[int]:
    issuer = demo_issuer()
    branch = db.session.scalar(
        select(Branch).where(Branch.issuer_id == issuer.id, Branch.code == branch_code)
    )
    tickets = []
    for _ in range(n):
        number = str(secrets.randbelow(10**12))
        tickets.append(
            Ticket(
                branch_id=branch.id,
                order_number="T" + number,
                ticket_number=number,
                sold_at=datetime.now(UTC) - timedelta(hours=1),
                total=Decimal("116.00"),
                lines=[
                    TicketLine(
                        position=1,
                        description="ARTICULO DE PRUEBA",
                        clave_prod_serv="01010101",
                        clave_unidad="H87",
                        quantity=Decimal("1"),
                        unit_price=Decimal("100.00"),
                        objeto_imp="02",
                        tax_factor="Tasa",
                        tax_rate=Decimal("0.160000"),
                    )
                ],
            )
        )
    db.session.add_all(tickets)
    db.session.commit()
    return [t.id for t in tickets]


def request_for(ticket_id: int, key: str | None = None) -> issue.Request:
    ticket = db.session.get(Ticket, ticket_id)
    return issue.Request(
        ticket.branch_id, [ticket_id], INGRID, "01", None, key or secrets.token_hex(8)
    )


def issue_one(ticket_id: int):
    return stamping().issue(db.session, request_for(ticket_id), demo_issuer(), datetime.now(UTC))


def invoices() -> int:
    return db.session.scalar(select(func.count()).select_from(Invoice))


# --- the ledger ------------------------------------------------------------------------------


def test_each_stamp_takes_one_credit_and_the_ledger_balances(app, demo):
    meter(app, 5)
    with app.app_context():
        for ticket_id in fresh_tickets(2):
            assert issue_one(ticket_id).result is Result.STAMPED
        assert demo_issuer().stamp_credits == 3
        assert ledger() == [(5, 5, "purchase"), (-1, 4, "stamp"), (-1, 3, "stamp")]
        paid = db.session.scalars(
            select(StampMovement.invoice_id).where(StampMovement.reason == "stamp")
        ).all()
        assert set(paid) == set(db.session.scalars(select(Invoice.id)))
        assert_balanced()


def test_a_failed_stamp_gives_its_credit_back_and_its_folio_pays_once(app, demo):
    meter(app, 3)
    with app.app_context():
        first, second = fresh_tickets(2)
        stamping().providers.replace_deployment(RefusingPac(app.config["PAC_SANDBOX_DIR"]))
        refused = issue_one(first)
        assert refused.result is Result.REFUSED
        assert demo_issuer().stamp_credits == 3  # given back
        stamping().providers.replace_deployment(sandbox(app))
        again = issue_one(second)
        assert again.result is Result.STAMPED
        assert again.invoice.id == refused.invoice.id  # the failed folio, recycled
        assert ledger() == [
            (3, 3, "purchase"),
            (-1, 2, "stamp"),
            (1, 3, "refund"),
            (-1, 2, "stamp"),
        ]
        net = db.session.scalar(
            select(func.sum(StampMovement.delta)).where(
                StampMovement.invoice_id == again.invoice.id
            )
        )
        assert net == -1  # one invoice, one credit
        assert_balanced()


def test_a_failed_stamp_of_an_unmetered_issuer_writes_nothing(app, demo):
    with app.app_context():
        [ticket_id] = fresh_tickets(1)
        invoice = issue.reserve(db.session, request_for(ticket_id), datetime.now(UTC))
        assert issue.fail(db.session, invoice, PacError("301", "no", retryable=False))
        assert ledger() == [] and demo_issuer().stamp_credits is None


def test_an_unmetered_issuer_stamps_without_credits(app, client, demo):
    stamp(client, demo["fresh"][0])
    with app.app_context():
        assert demo_issuer().stamp_credits is None
        assert ledger() == []
        assert db.session.scalars(select(Invoice)).one().status is InvoiceStatus.STAMPED


def test_credits_add_needs_a_positive_number(app, demo):
    with app.app_context():
        issuer = demo_issuer()
        for wrong in (0, -3, 1.5):
            try:
                credits.add(db.session, issuer, wrong, credits.PURCHASE)
            except ValueError:
                continue
            raise AssertionError(f"{wrong!r} was added")
        movement = credits.add(db.session, issuer, 7, credits.PURCHASE, note="paquete")
        db.session.commit()
        assert (movement.delta, movement.balance, movement.note) == (7, 7, "paquete")
        assert credits.balance(issuer) == 7
        assert [m.id for m in credits.history(db.session, issuer.id, 5)] == [movement.id]


# --- the gate --------------------------------------------------------------------------------


def _blocked_for_customers(app, client, demo, staff, admin_login, staff_text: str) -> None:
    """Ingrid's earlier invoice stays at hand; a new one is refused with the message and
    nothing reserved; the dashboard says why."""
    ticket = demo["fresh"][1]
    key = start(client, ticket["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(ticket, key))
    page = r.get_data(as_text=True)
    assert r.status_code == 409, page[:500]
    assert CUSTOMER_MESSAGE in page and "comuníquese con el comercio" in page
    with app.app_context():
        assert invoices() == 1
        assert db.session.get(Ticket, ticket["id"]).status is TicketStatus.OPEN
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    home = admin.get("/admin/").get_data(as_text=True)
    assert staff_text in home and "Consultar Constancia de Pago" in home


def _past_invoice_still_works(app, client, public_id: str) -> None:
    assert client.get(f"/facturar/factura/{public_id}").status_code == 200
    assert client.get(f"/facturar/factura/{public_id}.xml").status_code == 200
    pdf = client.get(f"/facturar/factura/{public_id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    sent = client.post(f"/facturar/factura/{public_id}/correo", data={"email": "x@example.com"})
    assert sent.status_code == 303
    assert client.get("/facturas/").status_code == 200  # the panel
    assert client.get(f"/facturas/{public_id}.pdf").status_code == 200
    resend = client.post(f"/facturas/{public_id}/reenviar", data={"email": "y@example.com"})
    assert resend.status_code == 303


def test_at_zero_credits_nothing_is_stamped_and_past_invoices_stay(
    app, client, demo, people, staff, admin_login
):
    meter(app, 1)
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    public_id = stamp(client, demo["fresh"][0])
    with app.app_context():
        assert demo_issuer().stamp_credits == 0
    _blocked_for_customers(app, client, demo, staff, admin_login, "Sin timbres disponibles")
    _past_invoice_still_works(app, client, public_id)
    with app.app_context():
        assert demo_issuer().stamp_credits == 0
        assert_balanced()


def test_a_licence_past_its_grace_period_stops_stamping(
    app, client, demo, people, staff, admin_login
):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    public_id = stamp(client, demo["fresh"][0])
    expired = datetime.now(UTC) - timedelta(days=16)
    meter(app, licence=expired)
    _blocked_for_customers(
        app, client, demo, staff, admin_login, f"Su licencia venció el {expired:%d/%m/%Y}"
    )
    _past_invoice_still_works(app, client, public_id)


def test_within_the_grace_period_it_stamps(app, client, demo):
    meter(app, licence=datetime.now(UTC) - timedelta(days=14))  # default grace: 15 days
    stamp(client, demo["fresh"][0])


def test_the_grace_period_is_the_platforms(app, demo):
    meter(app, licence=datetime.now(UTC) - timedelta(days=4), grace_days=3)
    with app.app_context():
        [ticket_id] = fresh_tickets(1)
        outcome = issue_one(ticket_id)
        assert (outcome.result, outcome.code) == (Result.UNAVAILABLE, "licence_expired")
        assert invoices() == 0


def test_a_race_to_the_last_credit_is_refused_in_the_locked_transaction(app, demo):
    """Reserve itself refuses (readiness passed before the credit went elsewhere)."""
    meter(app, 1)
    with app.app_context():
        first, second = fresh_tickets(2)
        issue.reserve(db.session, request_for(first), datetime.now(UTC))
        try:
            issue.reserve(db.session, request_for(second), datetime.now(UTC))
        except credits.Refused as refused:
            assert refused.code == "no_credits"
        else:
            raise AssertionError("reserved without credits")
        assert invoices() == 1
        assert db.session.get(Ticket, second).status is TicketStatus.OPEN


def test_a_second_press_of_a_paid_request_still_finishes(app, demo):
    """The last credit paid this request's invoice: pressing again answers it."""
    meter(app, 1)
    with app.app_context():
        [ticket_id] = fresh_tickets(1)
        request = request_for(ticket_id, key="same-press")
        invoice = issue.reserve(db.session, request, datetime.now(UTC))
        outcome = stamping().issue(db.session, request, demo_issuer(), datetime.now(UTC))
        assert outcome.result is Result.STAMPED and outcome.invoice.id == invoice.id


def test_a_global_and_a_replacement_pay_a_credit_and_are_refused_at_zero(app, demo):
    with app.app_context():
        original = make_invoice(app)  # unmetered yet
    meter(app, 2)
    with app.app_context():
        branch, period, now = last_closed_day(app)
        global_ = gi.issue_global(db.session, branch, period, now, stamping=stamping())
        assert global_.status is InvoiceStatus.STAMPED
        found = db.session.scalar(select(Invoice).where(Invoice.public_id == original))
        changes = replace.Changes(INGRID, "04", None)
        new = replace.replace(db.session, found, changes, now, key="r1", stamping=stamping())
        assert new.status is InvoiceStatus.STAMPED
        assert demo_issuer().stamp_credits == 0
        assert [r for _d, _b, r in ledger()] == ["purchase", "stamp", "stamp"]
        other_branch, other_period, _ = last_closed_day(app, "POLANCO")
        count = invoices()
        try:
            gi.issue_global(db.session, other_branch, other_period, now, stamping=stamping())
        except gi.GlobalError as problem:
            assert problem.code == "no_credits"
        else:
            raise AssertionError("a global without credits")
        assert invoices() == count
        assert_balanced()


# --- the race --------------------------------------------------------------------------------


def test_twenty_concurrent_stamps_against_ten_credits_make_exactly_ten(app, demo):
    meter(app, 10)
    with app.app_context():
        ticket_ids = fresh_tickets(20)
        requests = [request_for(t) for t in ticket_ids]
        issuer_id = demo_issuer().id
    results: list = []
    errors: list = []
    gate = threading.Barrier(20, timeout=30)  # all at once (no connection held while waiting)

    def one(request: issue.Request) -> None:
        try:
            gate.wait()
            with app.app_context():
                issuer = db.session.get(Issuer, issuer_id)
                outcome = stamping().issue(db.session, request, issuer, datetime.now(UTC))
                results.append((outcome.result, outcome.code))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(results).count((Result.STAMPED, "")) == 10
    assert sorted(results).count((Result.UNAVAILABLE, "no_credits")) == 10
    with app.app_context():
        stamped = db.session.scalars(select(Invoice.status)).all()
        assert stamped == [InvoiceStatus.STAMPED] * 10
        assert demo_issuer().stamp_credits == 0
        assert [r for _d, _b, r in ledger()].count("stamp") == 10
        assert_balanced()
        still_open = db.session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.id.in_(ticket_ids), Ticket.status == TicketStatus.OPEN)
        )
        assert still_open == 10


# --- warnings --------------------------------------------------------------------------------


def warnings(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (m.to_addrs, m.subject)
            for m in db.session.scalars(select(MailMessage).order_by(MailMessage.id))
            if "timbres" in m.subject
        ]


def test_low_credit_warnings_go_once_per_threshold(app, demo, staff):
    meter(app, 6, low_credit_thresholds="5,2,0")
    with app.app_context():
        tickets = fresh_tickets(9)
        for ticket_id in tickets[:3]:  # 6 → 3: crosses 5
            assert issue_one(ticket_id).result is Result.STAMPED
    sent = warnings(app)
    assert len(sent) == 1 and "Le quedan 5 timbres" in sent[0][1]
    assert staff["admin"] in sent[0][0] and staff["branch"] not in sent[0][0]
    with app.app_context():
        assert issue_one(tickets[3]).result is Result.STAMPED  # 3 → 2: crosses 2
        # A failed stamp at 2 → 1 gives its credit back (2); stamping to 2 again warns no more.
        stamping().providers.replace_deployment(RefusingPac(app.config["PAC_SANDBOX_DIR"]))
        assert issue_one(tickets[4]).result is Result.REFUSED
        stamping().providers.replace_deployment(sandbox(app))
        assert issue_one(tickets[5]).result is Result.STAMPED  # 2 → 1
        assert issue_one(tickets[6]).result is Result.STAMPED  # 1 → 0: crosses 0
        assert issue_one(tickets[7]).result is Result.UNAVAILABLE
    subjects = [s for _to, s in warnings(app)]
    assert len(subjects) == 3
    assert "Le quedan 2 timbres" in subjects[1] and "Se acabaron sus timbres" in subjects[2]
    with app.app_context():  # a purchase arms the warnings again
        credits.add(db.session, demo_issuer(), 6, credits.PURCHASE)
        db.session.commit()
        assert issue_one(tickets[8]).result is Result.STAMPED  # 6 → 5
        assert demo_issuer().credit_warned_at_threshold == 5
    assert len(warnings(app)) == 4
    body = None
    with app.app_context():
        body = db.session.scalars(select(MailMessage).order_by(MailMessage.id.desc())).first()
        assert "Consultar Constancia de Pago" in body.body_text
