"""An Ecuadorian invoice goes the one stamping road: reserved with its branch's gap-free
secuencial, signed with the issuer's .p12, sent to SRI once, authorised, printed as a RIDE;
a lost answer, a refusal and a dead process are settled by clave de acceso, never by a second
document under a new clave."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from tests.flows import barcodes_in, text_of
from webapp.extensions import db
from webapp.fiscal.receptor import Receptor
from webapp.issuing import issue
from webapp.models import (
    Account,
    AuthorityState,
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    MailMessage,
    Ticket,
    TicketStatus,
)
from webapp.services.stamping import Result, files_with_pdf
from webapp.sri import access_key as keys
from webapp.sri.client import (
    Authorisation,
    AuthorisationState,
    Message,
    Reception,
    ReceptionState,
    SriTimeout,
)
from webapp.sri.xsd import validate
from webapp.wiring import stamping


def buyer(cedula: str) -> Receptor:
    return Receptor(
        rfc=cedula,
        nombre="María José Andrade",
        cp="",
        regimen="",
        uso_cfdi="",
        id_type="05",
        address="Calle Larga 7-45, Cuenca",
    )


def ask(shop: dict, ticket: dict, key: str | None = None):
    request = issue.Request(
        branch_id=shop["branch_id"],
        ticket_ids=[ticket["id"]],
        receptor=buyer(shop["cedula"]),
        forma_pago="19",
        email="maria@example.com",
        idempotency_key=key or f"k-{ticket['id']}",
    )
    issuer = db.session.get(Issuer, shop["issuer_id"])
    return stamping().issue(db.session, request, issuer, datetime.now(UTC))


class Scripted:
    """SRI as a test script: each call answers the next scripted answer (or raises it), and
    what it was sent is kept. The real client is tested against SRI's replayed answers in
    test_sri_client.py; here the road's reaction to each answer is what is tested."""

    def __init__(self, real, sends=(), authorisations=()):
        self.real = real
        self.environment = real.environment
        self.sends, self.authorisations = list(sends), list(authorisations)
        self.sent: list[bytes] = []

    def send(self, xml):
        self.sent.append(xml)
        answer = self.sends.pop(0) if self.sends else "real"
        if answer == "real":
            return self.real.send(xml)
        if answer == "lost":  # SRI took it, the answer never came back
            self.real.send(xml)
            raise SriTimeout("read timeout", after_send=True, access_key=keys_of(xml))
        return answer(xml)

    def authorise(self, key):
        answer = self.authorisations.pop(0) if self.authorisations else "real"
        return self.real.authorise(key) if answer == "real" else answer(key)


def keys_of(xml: bytes) -> str:
    from webapp.sri.client import access_key_of

    return access_key_of(xml)


def use(app, authority) -> None:
    with app.app_context():
        stamping().providers.replace_sri(authority)


def real_sri(app):
    with app.app_context():
        return stamping().providers.sri()


def test_a_ticket_becomes_an_authorised_sri_factura_printed_as_a_ride(app, ec_shop):
    with app.app_context():
        outcome = ask(ec_shop, ec_shop["tickets"][0])
        assert outcome.result is Result.STAMPED
        invoice = outcome.invoice
        assert (invoice.serie, invoice.folio, invoice.currency) == ("001-001", 1, "USD")
        assert invoice.total == Decimal("10.30") and invoice.taxes == Decimal("1.05")
        assert invoice.authority_state == AuthorityState.AUTHORISED
        assert invoice.uuid == invoice.access_key and keys.is_valid(invoice.access_key)
        assert invoice.test_stamp  # the sandbox SRI is ambiente 1, pruebas
        validate(invoice.xml, signed=True)
        assert db.session.get(Branch, ec_shop["branch_id"]).next_secuencial == 2
        files = files_with_pdf(db.session, invoice)
        text = text_of(files.pdf)
        assert "001-001-000000001" in text and "MARÍA JOSÉ ANDRADE" in text.upper()
        assert barcodes_in(files.pdf) == [invoice.access_key]
        mail = db.session.scalars(select(MailMessage)).one()
        assert mail.to_addrs == "maria@example.com"
        assert mail.subject.startswith("Factura electrónica 001-001-000000001")
        assert invoice.access_key in mail.body_text and "SRI" in mail.body_text
        names = sorted(a.filename for a in mail.attachments)
        stem = f"{ec_shop['ruc']}_001-001-000000001_{invoice.access_key}"
        assert names == [f"{stem}.pdf", f"{stem}.xml"]


def test_a_lost_answer_is_recovered_by_clave_never_sent_under_a_new_one(app, ec_shop):
    scripted = Scripted(real_sri(app), sends=["lost"])
    use(app, scripted)
    with app.app_context():
        outcome = ask(ec_shop, ec_shop["tickets"][0])
        assert outcome.result is Result.PENDING
        invoice = outcome.invoice
        assert invoice.status is InvoiceStatus.STAMPING
        assert invoice.authority_state == AuthorityState.SENT
        clave = invoice.access_key
        counts = stamping().reconcile(db.session, datetime.now(UTC) + timedelta(minutes=5))
        assert counts["recorded"] == 1
        db.session.refresh(invoice)
        assert invoice.status is InvoiceStatus.STAMPED and invoice.uuid == clave
        assert len(scripted.sent) == 1  # asked by clave: never sent again


def test_a_document_sri_never_got_is_sent_again_with_the_same_clave(app, ec_shop):
    def unreachable(xml):
        raise SriTimeout("connect timeout", after_send=False, access_key=keys_of(xml))

    scripted = Scripted(real_sri(app), sends=[unreachable])
    use(app, scripted)
    with app.app_context():
        invoice = ask(ec_shop, ec_shop["tickets"][0]).invoice
        assert invoice.status is InvoiceStatus.STAMPING
        stamping().reconcile(db.session, datetime.now(UTC) + timedelta(minutes=5))
        db.session.refresh(invoice)
        assert invoice.status is InvoiceStatus.STAMPED
        assert scripted.sent[0] == scripted.sent[1] == invoice.xml  # the same signed XML


def test_in_process_waits_then_reconcile_records_the_authorisation(make_app, ec_shop_in):
    app = make_app(SRI_POLL_SECONDS=0)  # no real waiting between the polls
    ec_shop = ec_shop_in(app)

    def in_process(key):
        return Authorisation(key, AuthorisationState.IN_PROCESS)

    scripted = Scripted(real_sri(app), authorisations=[in_process] * 3)
    use(app, scripted)
    with app.app_context():
        outcome = ask(ec_shop, ec_shop["tickets"][0])
        assert outcome.result is Result.PENDING
        assert outcome.invoice.authority_state == AuthorityState.RECEIVED
        stamping().reconcile(db.session, datetime.now(UTC) + timedelta(minutes=5))
        db.session.refresh(outcome.invoice)
        assert outcome.invoice.status is InvoiceStatus.STAMPED
        assert len(scripted.sent) == 1


@pytest.mark.parametrize("refusal", ["returned", "not_authorised"])
def test_a_refused_factura_frees_its_ticket_and_gives_its_secuencial_to_the_next(
    app, ec_shop, refusal
):
    def returned(xml):
        message = Message("35", "ARCHIVO NO CUMPLE ESTRUCTURA XML", "", "ERROR")
        return Reception(ReceptionState.RETURNED, keys_of(xml), (message,))

    def not_authorised(key):
        message = Message("56", "ESTABLECIMIENTO CERRADO", "", "ERROR")
        return Authorisation(key, AuthorisationState.NOT_AUTHORISED, messages=(message,))

    def received_only(xml):  # received, then refused: the real sandbox never gets it
        return Reception(ReceptionState.RECEIVED, keys_of(xml))

    if refusal == "returned":
        scripted = Scripted(real_sri(app), sends=[returned])
    else:
        scripted = Scripted(real_sri(app), sends=[received_only], authorisations=[not_authorised])
    use(app, scripted)
    first, second = ec_shop["tickets"][:2]
    with app.app_context():
        outcome = ask(ec_shop, first)
        assert outcome.result is Result.REFUSED
        refused = outcome.invoice
        assert refused.status is InvoiceStatus.FAILED
        assert refused.authority_state == refusal
        assert ("35" if refusal == "returned" else "56") in refused.error
        assert db.session.get(Ticket, first["id"]).status is TicketStatus.OPEN
        again = ask(ec_shop, second)
        assert again.result is Result.STAMPED
        assert (again.invoice.serie, again.invoice.folio) == ("001-001", 1)  # no gap
        assert again.invoice.authority_state == AuthorityState.AUTHORISED
        assert again.invoice.access_key != keys_of(scripted.sent[0])  # a new document


def test_a_process_killed_after_sri_received_it_is_settled_without_sending_again(app, ec_shop):
    """The state a SIGKILL leaves between SRI's RECIBIDA and the recorded authorisation."""
    scripted = Scripted(real_sri(app), sends=["lost"])
    use(app, scripted)
    with app.app_context():
        invoice = ask(ec_shop, ec_shop["tickets"][0]).invoice
        db.session.execute(
            update(Invoice)
            .where(Invoice.id == invoice.id)
            .values(authority_state="received", updated_at=datetime.now(UTC) - timedelta(hours=1))
        )
        db.session.commit()
        counts = stamping().reconcile(db.session, datetime.now(UTC))
        assert counts["recorded"] == 1 and len(scripted.sent) == 1


def test_parallel_invoices_take_consecutive_secuenciales(app, ec_shop):
    results: list = []

    def one(ticket):
        with app.app_context():
            outcome = ask(ec_shop, ticket)
            results.append((outcome.result, outcome.invoice.folio))

    threads = [threading.Thread(target=one, args=(t,)) for t in ec_shop["tickets"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(folio for _, folio in results) == [1, 2, 3, 4, 5]
    assert {result for result, _ in results} == {Result.STAMPED}
    with app.app_context():
        claves = db.session.scalars(select(Invoice.access_key)).all()
        assert len(set(claves)) == 5


HOSTILE = [
    ("<b>&amp;</b> ]]> \"'", "Calle 1 & 2 <script>alert(1)</script>"),
    ("Ñandú\u0000Pérez\u0007", "Línea 1\nLínea 2\r\n\tfin"),
    ("x" * 400, "y" * 400),
    ("🙂 Emoji S.A. \u202e", "\ufeffCalle \U0001f600"),
    ("  espacios   raros  ", "   "),
]


@pytest.mark.parametrize("nombre, address", HOSTILE)
def test_hostile_buyer_text_still_makes_a_valid_factura(app, ec_shop, nombre, address):
    """What the forms let through is escaped or cut to SRI's schema by the factura builder;
    the road never breaks on it (the forms' own checks are in test_invoicing_ec.py)."""
    request = issue.Request(
        branch_id=ec_shop["branch_id"],
        ticket_ids=[ec_shop["tickets"][0]["id"]],
        receptor=Receptor(
            rfc=ec_shop["cedula"],
            nombre=nombre,
            cp="",
            regimen="",
            uso_cfdi="",
            id_type="05",
            address=address,
        ),
        forma_pago="01",
        email=None,
        idempotency_key="hostile",
    )
    with app.app_context():
        issuer = db.session.get(Issuer, ec_shop["issuer_id"])
        outcome = stamping().issue(db.session, request, issuer, datetime.now(UTC))
        assert outcome.result is Result.STAMPED, outcome.reason
        validate(outcome.invoice.xml, signed=True)
        assert files_with_pdf(db.session, outcome.invoice).pdf.startswith(b"%PDF")


def test_staff_see_the_factura_by_its_sri_number_with_its_ride(app, ec_shop, client, admin_login):
    from webapp.demo.staff import STAFF_PASSWORD
    from webapp.models import StaffMember, StaffRole
    from webapp.security import passwords

    with app.app_context():
        invoice = ask(ec_shop, ec_shop["tickets"][0]).invoice
        public_id, clave = invoice.public_id, invoice.access_key
        db.session.add(
            StaffMember(
                issuer_id=ec_shop["issuer_id"],
                email="admin@andes.example",
                name="Admin Andes",
                role=StaffRole.ISSUER_ADMIN,
                password_hash=passwords.hash_password(STAFF_PASSWORD),
            )
        )
        db.session.commit()
    admin_login(client, "admin@andes.example")
    listing = client.get("/admin/facturas")
    assert listing.status_code == 200 and "001-001-000000001" in listing.get_data(as_text=True)
    detail = client.get(f"/admin/facturas/{public_id}")
    assert detail.status_code == 200 and clave in detail.get_data(as_text=True)
    ride = client.get(f"/admin/facturas/{public_id}/factura.pdf")
    assert ride.status_code == 200 and barcodes_in(ride.data) == [clave]


def test_the_panel_lists_and_zips_an_ecuadorians_sri_factura_like_a_cfdi(app, ec_shop, client):
    import io
    import zipfile

    from tests.flows import PASSWORD, sign_in, verified_account

    with app.app_context():
        # An Ecuadorian registers with the generic foreign RFC (myservices.signup).
        account_id = verified_account("XEXX010101000", "maria@example.com")
        db.session.get(Account, account_id).id_document = ec_shop["cedula"]
        db.session.commit()
        request = issue.Request(
            branch_id=ec_shop["branch_id"],
            ticket_ids=[ec_shop["tickets"][0]["id"]],
            receptor=buyer(ec_shop["cedula"]),
            forma_pago="19",
            email="maria@example.com",
            idempotency_key="panel",
            account_id=account_id,
        )
        issuer = db.session.get(Issuer, ec_shop["issuer_id"])
        invoice = stamping().issue(db.session, request, issuer, datetime.now(UTC)).invoice
        clave = invoice.access_key
    assert sign_in(client, "maria@example.com", PASSWORD).status_code == 303
    listing = client.get("/facturas/").get_data(as_text=True)
    assert "001-001-000000001" in listing and clave in listing
    archive = client.get("/facturas/exportar.zip")
    assert archive.status_code == 200
    names = sorted(zipfile.ZipFile(io.BytesIO(archive.data)).namelist())
    stem = f"{ec_shop['ruc']}_001-001-000000001_{clave}"
    assert [n.rsplit("/", 1)[-1] for n in names] == [f"{stem}.pdf", f"{stem}.xml"]
