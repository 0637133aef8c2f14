"""What several test modules do the same way: people's steps through the portal (register,
sign in, invoice a ticket), the rows they make, and loopback servers playing a provider.

Plain helpers and constants only; the fixtures built on them are in tests/conftest.py. Test
modules import from here, never from one another.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from lxml import etree
from playwright.sync_api import expect
from pypdf import PdfReader
from sqlalchemy import func, select

from webapp.api.keys import make_key
from webapp.cfdi.cadena import find_tfd
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.cfdi.pac import Stamped
from webapp.cfdi.pac.finkok import FinkokPac
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.extensions import db
from webapp.fiscal.receptor import Receptor
from webapp.issuing import global_invoice as gi
from webapp.issuing import issue
from webapp.kiosk.web import COOKIE
from webapp.models import (
    Account,
    Branch,
    Invoice,
    InvoiceStatus,
    Issuer,
    MailMessage,
    Ticket,
    TicketLine,
    TicketStatus,
    invoice_ticket,
)
from webapp.security.captcha import store as captcha_store
from webapp.security.passwords import hash_password
from webapp.wiring import stamping

# --- Waiting on a busy machine -------------------------------------------------------------

# Long enough for a machine at a load average of 15; a wait ends as soon as its condition holds.
PATIENCE = 120.0


def wait_until(condition: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    """Poll `condition` until it is true; fail after `timeout` seconds saying `what` it was."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


# --- The customer, her account and her RFC ------------------------------------------------

RFC = "XOJI740919U48"
EMAIL = "ingrid@example.com"
GOOD_PASSWORD = {"modern": "caballo bateria grapa correcta", "seed": "Caballo.Bateria7"}
QUESTION = {"q-question": "mascota", "q-answer": "Firulais"}  # seed preset only
RECEPTOR = {
    "nombre": "INGRID XODAR JIMENEZ",
    "cp": "76028",
    "regimen": "612",
    "uso_cfdi": "G03",
    "email": "ingrid@example.com",
    "forma_pago": "01",
}
PASSWORD = "Gaviota-Demo-2026"  # noqa: S105 (the accounts of verified_account)
OTHER_RFC = "GODE561231GR8"


def mails(app):
    """(to, subject, text) of every message in the outbox, oldest first."""
    with app.app_context():
        return [
            (m.to_addrs, m.subject, m.body_text)
            for m in db.session.scalars(select(MailMessage).order_by(MailMessage.id))
        ]


def link_in(body: str) -> str:
    return re.search(r"http://localhost(/cuenta/verificar/\S+)", body).group(1)


def register(client, rfc=RFC, email=EMAIL, confirm=None):
    return client.post(
        "/cuenta/registro", data={"rfc": rfc, "email": email, "email_confirm": confirm or email}
    )


def complete(app, client, preset, email=EMAIL):
    """Register, follow the emailed link and choose the password: `client` is signed in."""
    register(client, email=email)
    link = link_in(mails(app)[-1][2])
    r = client.post(
        link,
        data={
            "password": GOOD_PASSWORD[preset],
            "password_confirm": GOOD_PASSWORD[preset],
            **(QUESTION if preset == "seed" else {}),
        },
    )
    assert r.status_code == 303 and r.headers["Location"].endswith("/cuenta/")
    return link


def solved_captcha(app, html: str) -> dict:
    """The captcha fields of a page, answered as a person reading the image would."""
    found = re.search(r'name="captcha_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="captcha_token" value="([^"]+)"', html
    )
    if not found:
        return {}
    with app.test_request_context():
        answer = captcha_store.challenge_for(found.group(1)).answer
    return {"captcha_token": found.group(1), "captcha": answer}


def sign_in(client, identifier, password, app=None):
    """Sign in as a person would: the captcha, when the page shows one, is answered."""
    page = client.get("/cuenta/entrar").get_data(as_text=True)
    extra = solved_captcha(app or client.application, page)
    return client.post(
        "/cuenta/entrar", data={"identifier": identifier, "password": password, **extra}
    )


def verified_account(rfc: str, email: str) -> int:
    """An account with a verified email and the password PASSWORD (in an app context)."""
    now = datetime.now(UTC)
    account = Account(
        rfc=rfc,
        email=email,
        email_verified_at=now,
        password_hash=hash_password(PASSWORD),
        password_changed_at=now,
    )
    db.session.add(account)
    db.session.commit()
    return account.id


def registered_account(app, password=GOOD_PASSWORD["modern"]):
    """Ingrid's verified account (RFC, EMAIL), as registration leaves it; its password."""
    with app.app_context():
        now = datetime.now(UTC)
        db.session.add(
            Account(
                rfc=RFC,
                email=EMAIL,
                email_verified_at=now,
                password_hash=hash_password(password),
                password_changed_at=now,
            )
        )
        db.session.commit()
    return password


# --- Pages: what a person notices of them --------------------------------------------------


def without_tokens(html: str) -> str:
    """The page without its CSRF tokens, which are signed with the time (to the second): two
    answers a second apart differ in them and only in them."""
    html = re.sub(r'("X-CSRFToken": )"[^"]*"', r'\1""', html)
    return re.sub(r'(name="csrf_token"[^>]*value=)"[^"]*"', r'\1""', html)


# --- The ticket flow ---------------------------------------------------------------------


def start(client, branch_id, rfc=RFC):
    """Choose the branch and give the RFC (one page, one POST that answers with the ticket
    step); the ticket form's idempotency key."""
    assert client.get("/facturar/demo/").status_code == 200
    r = client.post("/facturar/demo/", data={"branch": str(branch_id), "rfc": rfc})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Datos del ticket" in page, page
    return re.search(r'name="key" type="hidden" value="([^"]+)"', page).group(1)


def ticket_data(t, key, **extra):
    """The ticket form for the demo ticket `t`, with RECEPTOR's data, to generate."""
    data = {
        "order_number": t["order"],
        "ticket_number": t["number"],
        "total": str(t["total"]),
        "key": key,
        "action": "generate",
        **RECEPTOR,
    }
    data.update(extra)
    return data


def stamp(client, ticket, **extra) -> str:
    """Invoice `ticket` through the portal; the invoice's public id."""
    key = start(client, ticket["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(ticket, key, **extra))
    assert r.status_code == 303, r.get_data(as_text=True)
    return r.headers["Location"].rsplit("/", 1)[-1]


def public_ids(html: str) -> list[str]:
    """The invoices listed in Mis facturas, as their checkboxes name them."""
    return re.findall(r'name="f" value="([^"]+)"', html)


def field(html: str, name: str) -> str:
    """The field `name` of a form, when it is marked invalid (with its message); else ''."""
    found = re.search(rf'<div class="field invalid" id="campo-{name}".*?</div>', html, re.S)
    return found.group(0) if found else ""


def text_of(pdf: bytes) -> str:
    """The text of a PDF, its whitespace collapsed."""
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)


def barcodes_in(pdf: bytes) -> list[str]:
    """What the barcodes drawn on the first page of a PDF decode to (a RIDE's clave)."""
    import zxingcpp

    images = PdfReader(io.BytesIO(pdf)).pages[0].images
    return [code.text for image in images for code in zxingcpp.read_barcodes(image.image)]


# --- In a real browser -------------------------------------------------------------------


def browser_sign_in(page, base: str, password: str) -> None:
    """Sign in to Mi cuenta as RFC, in the browser."""
    page.goto(base + "/cuenta/entrar")
    page.get_by_label("RFC o correo electrónico").fill(RFC)
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mi cuenta")


def fill_ticket(page, ticket):
    """The ticket form of the demo ticket `ticket`, filled with Ingrid's data."""
    page.get_by_label("Número de orden", exact=True).fill(ticket["order"])
    page.get_by_label("Número de ticket", exact=True).fill(ticket["number"])
    page.get_by_label("Total del ticket", exact=True).fill(f"{ticket['total']:.2f}")
    page.get_by_label("Nombre o razón social").fill("INGRID XODAR JIMENEZ")
    page.get_by_label("Código postal").fill("76028")
    page.get_by_label("Régimen fiscal").select_option("612")
    page.get_by_label("Uso del CFDI").select_option("G03")
    page.get_by_label("Correo electrónico").fill("ingrid@example.com")


# --- Kiosks ------------------------------------------------------------------------------


def enrol_link(app, code="CENTRO", name="Caja 1", tmp_path=None) -> str:
    """`flask kiosk enrol`: the enrolment path it printed."""
    args = ["kiosk", "enrol", "--branch", code, "--name", name]
    if tmp_path is not None:
        args += ["--qr", str(tmp_path / "alta.svg")]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return re.search(r"http://localhost(/kiosco/alta/\S+)", result.output).group(1)


def enrol(app, client, code="CENTRO") -> str:
    """Make `client` a kiosk of branch `code`; the device cookie's value."""
    r = client.post(enrol_link(app, code))
    assert r.status_code == 303 and r.headers["Location"] == "/kiosco/"
    return client.get_cookie(COOKIE).value


# --- Invoices stamped in the sandbox, and cancelling them -------------------------------------

INGRID = Receptor(RFC, RECEPTOR["nombre"], RECEPTOR["cp"], RECEPTOR["regimen"], "G03")
SMALL = Decimal("500.00")  # before tax: 580.00 with IVA, no acceptance needed
LARGE = Decimal("2000.00")  # 2,320.00 with IVA: the receptor must accept


def public_receptor(cp: str, rfc: str = "XAXX010101000") -> Receptor:
    return Receptor(rfc, "PUBLICO EN GENERAL", cp, "616", "S01")


def make_invoice(
    app,
    price: Decimal = SMALL,
    receptor: Receptor = INGRID,
    branch_code: str = "CENTRO",
    account_id: int | None = None,
) -> str:
    """A fresh ticket of the demo issuer's `branch_code`, invoiced and stamped in the
    sandbox; the invoice's public id."""
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        branch = db.session.scalar(
            select(Branch).where(Branch.issuer_id == issuer.id, Branch.code == branch_code)
        )
        if receptor.rfc in ("XAXX010101000", "XEXX010101000"):
            receptor = public_receptor(branch.cp, receptor.rfc)
        number = str(secrets.randbelow(10**12))
        ticket = Ticket(
            branch_id=branch.id,
            order_number="T" + number,
            ticket_number=number,
            sold_at=datetime.now(UTC) - timedelta(hours=1),
            total=(price * Decimal("1.16")).quantize(Decimal("0.01")),
            lines=[
                TicketLine(
                    position=1,
                    description="ARTICULO DE PRUEBA",
                    clave_prod_serv="01010101",
                    clave_unidad="H87",
                    quantity=Decimal("1"),
                    unit_price=price,
                    objeto_imp="02",
                    tax_factor="Tasa",
                    tax_rate=Decimal("0.160000"),
                )
            ],
        )
        db.session.add(ticket)
        db.session.commit()
        request = issue.Request(
            branch.id, [ticket.id], receptor, "01", None, secrets.token_hex(8), account_id
        )
        invoice = issue.reserve(db.session, request, datetime.now(UTC))
        stamping().stamp(db.session, invoice)
        assert invoice.status is InvoiceStatus.STAMPED
        return invoice.public_id


def load(public_id: str) -> Invoice:
    return db.session.scalar(select(Invoice).where(Invoice.public_id == public_id))


def sandbox(app) -> SandboxPac:
    """The sandbox PAC of `app` (the one its invoices were stamped by)."""
    return SandboxPac(app.config["PAC_SANDBOX_DIR"])


def ticket_states(invoice: Invoice) -> list[tuple[TicketStatus, bool]]:
    return [
        (ticket.status, active)
        for ticket, active in db.session.execute(
            select(Ticket, invoice_ticket.c.active)
            .join(invoice_ticket, invoice_ticket.c.ticket_id == Ticket.id)
            .where(invoice_ticket.c.invoice_id == invoice.id)
        )
    ]


def now() -> datetime:
    return datetime.now(UTC)


# --- Factura global --------------------------------------------------------------------------


def last_closed_day(app, branch_code="CENTRO"):
    """The branch and the newest day before today (Mexico City) with open tickets."""
    now = datetime.now(UTC)
    today_start = datetime.combine(gi.local_today(now), datetime.min.time(), MEXICO_CITY)
    branch = db.session.scalar(select(Branch).where(Branch.code == branch_code))
    sold = db.session.scalar(
        select(func.max(Ticket.sold_at)).where(
            Ticket.branch_id == branch.id,
            Ticket.status == TicketStatus.OPEN,
            Ticket.sold_at < today_start,
        )
    )
    return branch, gi.period_of("01", sold.astimezone(MEXICO_CITY).date()), now


def period_tickets(branch, period):
    start, end = period.utc_bounds()
    return db.session.scalars(
        select(Ticket)
        .where(Ticket.branch_id == branch.id, Ticket.sold_at >= start, Ticket.sold_at < end)
        .order_by(Ticket.id)
    ).all()


# --- The point of sale's API ---------------------------------------------------------------


def make_api_key(app, slug: str = "demo") -> str:
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
        _, key = make_key(db.session, issuer, "Caja 1")
        db.session.commit()
        return key


def api_ticket(number: str = "90000001", branch: str = "CENTRO", **overrides) -> dict:
    """A valid ticket: two 600 ml colas at 16 % (31.04 + 4.97), two litres of milk at 0 %
    (57.00) and an exempt newspaper (15.00): 108.01."""
    payload = {
        "branch": branch,
        "ticket_number": number,
        "order_number": "500001",
        "sold_at": (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat(),
        "total": "108.01",
        "currency": "MXN",
        "lines": [
            {
                "description": "REFRESCO DE COLA 600 ML",
                "clave_prod_serv": "50202306",
                "clave_unidad": "H87",
                "quantity": "2",
                "unit_price": "15.52",
                "objeto_imp": "02",
                "tax_factor": "Tasa",
                "tax_rate": "0.160000",
            },
            {
                "description": "LECHE ENTERA 1 L",
                "clave_prod_serv": "50131702",
                "clave_unidad": "LTR",
                "quantity": "2",
                "unit_price": "28.50",
                "objeto_imp": "02",
                "tax_factor": "Tasa",
                "tax_rate": "0.000000",
            },
            {
                "description": "PERIODICO DEL DIA",
                "clave_prod_serv": "55101504",
                "clave_unidad": "H87",
                "quantity": "1",
                "unit_price": "15.00",
                "objeto_imp": "02",
                "tax_factor": "Exento",
            },
        ],
    }
    payload.update(overrides)
    return payload


# --- A real SMTP server on loopback (the `smtp_server` fixture) -------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd handler keeping every message it accepts, optionally slow.

    `on_accept(envelope)` runs after a message is kept, before the client gets its 250.
    With `hold_after` = n, the message after the n-th kept one is held (`holding` is set)
    until `release` is set, then refused with a 451: the client never had it accepted.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.envelopes: list = []
        self.url = ""
        self.on_accept = None
        self.hold_after: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if len(self.envelopes) == self.hold_after and not self.release.is_set():
            self.holding.set()
            deadline = time.monotonic() + PATIENCE
            while not self.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return "451 Requested action aborted: try again later"
        self.envelopes.append(envelope)
        if self.on_accept is not None:
            self.on_accept(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(e.content) for e in list(self.envelopes)]


# --- A loopback server replaying a provider's answers (the `server` fixture) ----------------

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"

Answer = tuple[int, str, bytes] | None  # (status, content type, body); None: never answer


@dataclass(frozen=True)
class Seen:
    """A request the replay server received."""

    method: str
    target: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


class Replay(ThreadingHTTPServer):
    """HTTP on 127.0.0.1 answering each request with `answer(seen)`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReplayHandler)
        self.seen: list[Seen] = []
        self.answer: Callable[[Seen], Answer] = lambda seen: (404, "text/plain", b"not here")
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ReplayHandler(BaseHTTPRequestHandler):
    server: Replay

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        seen = Seen(self.command, self.path, headers, body)
        self.server.seen.append(seen)
        answer = self.server.answer(seen)
        if answer is None:  # a provider that never answers
            self.server.release.wait(10)
            return
        status, content_type, payload = answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Doc:
    """A signed CFDI and the stamp the provider made of it."""

    signed: bytes
    stamped: Stamped

    @property
    def sello(self) -> str:
        return etree.fromstring(self.signed).get("Sello")

    @property
    def tfd(self) -> etree._Element:
        return find_tfd(etree.fromstring(self.stamped.xml))


def soap_operation(seen: Seen) -> etree._Element:
    """The operation element of a SOAP request (`stamp`, `stamped`)."""
    return etree.fromstring(seen.body).find(f"{{{SOAP}}}Body")[0]


def finkok(server_url: str, timeout: float = PATIENCE) -> FinkokPac:
    return FinkokPac("user@example.com", "s3cret", url=server_url, timeout=timeout)


def sw_json(body: object, status: int = 200) -> Answer:
    return status, "application/json; charset=utf-8", json.dumps(body).encode()


def sw_refusal(message: str, data: object = None, status: int = 400) -> Answer:
    return sw_json(
        {"message": message, "messageDetail": None, "data": data, "status": "error"}, status
    )


# --- Mis servicios in a real browser (tests/test_services_browser.py, test_sri_browser.py) --


def captcha_answer(app, page) -> str:
    """The answer to the captcha shown on `page`, read from the app's store."""
    from webapp.security.captcha import store as captcha_store

    token = page.locator(f'input[name="{captcha_store.TOKEN_FIELD}"]').input_value()
    with app.app_context():
        return captcha_store.challenge_for(token).answer


def register_holder(app, page, fields: dict[str, str], password: str) -> None:
    """Fill the open registration page of a services issuer (`fields`: label → value), the
    passwords, the captcha and the terms; CONTINUAR."""
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_label("Confirmar contraseña").fill(password)
    page.get_by_label(re.compile("Escriba los números")).fill(captcha_answer(app, page))
    page.get_by_label(re.compile("He leído y acepto")).check()
    page.get_by_role("button", name="CONTINUAR").click()
    expect(page.get_by_text(re.compile("Revise su correo"))).to_be_visible()


def open_activation_email(page, base: str) -> None:
    """Reload /dev/mail until the activation email is there (the worker delivers it), open it."""
    inbox = page.get_by_role("link", name=re.compile("Activa tu cuenta"))

    def arrived() -> bool:
        page.goto(base + "/dev/mail")
        return inbox.count() > 0

    wait_until(arrived, "the activation email at /dev/mail")
    inbox.click()


def activate_and_sign_in(page, base: str, slug: str, email: str, password: str) -> None:
    """From the open activation email: its link (on this server), Activar Cuenta, Entrar."""
    link = page.locator(f'a[href*="/servicios/{slug}/activar/"]').first.get_attribute("href")
    page.goto(base + urlsplit(link).path)  # the link names BASE_URL; this server is elsewhere
    page.get_by_role("button", name="Activar Cuenta").click()
    expect(page.get_by_text(re.compile("Su cuenta está activa"))).to_be_visible()
    page.locator("#contenido").get_by_role("link", name="Entrar").click()
    page.get_by_label("RFC o correo electrónico").fill(email)
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mis servicios")


def ask_line_code(page, service: str, typed: str):
    """Mis servicios → `service` → the number as typed → GENERAR; the CÓDIGO field."""
    page.get_by_role("link", name=service).click()
    page.get_by_label("Número").fill(typed)
    page.get_by_role("button", name="GENERAR").click()
    code_field = page.get_by_label("CÓDIGO")
    expect(code_field).to_be_visible()
    return code_field


def enter_line_code(page, base: str, number: str, code_field) -> None:
    """Read the code sent to `number` (E.164) at /dev/sms in another tab, as the newcomer
    would (reloading until the worker delivered it), type it, Aceptar."""
    sms = page.context.new_page()
    row = sms.get_by_role("row").filter(has_text=number)

    def delivered() -> bool:
        sms.goto(base + "/dev/sms")
        return row.count() > 0

    wait_until(delivered, "the SMS with the code at /dev/sms")
    code = re.search(r"\b(\d{6})\b", row.first.inner_text()).group(1)
    sms.close()
    code_field.fill(code)
    page.get_by_role("button", name="Aceptar").click()
