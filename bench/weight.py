"""Page weight in headless Chromium: the bytes each page costs, and the flow on Slow 3G.

    .venv/bin/python bench/weight.py [--skip-slow]

Builds the app on a temporary SQLite database (migrated, demo data from load_demo, the demo
customer with 30 invoices from load_invoices; CSRF, captcha and compression on, as in
production) and serves it with werkzeug on a loopback port in a thread. Debian's Chromium
(/usr/bin/chromium, headless, driven by Playwright) then loads each page in a fresh browser
context (empty cache): home, branch, RFC step, ticket step, the invoice of a stamped ticket,
sign-in, registration, Mi cuenta and Mis facturas (signed in, 30 invoices). Then the monthly
service bills (issue #15) of the demo telecom provider (load_services_demo, 50 accounts and 80
lines, two months billed by load_history): its landing and registration as a guest, and, as the
demo customer holding the line mobile_number(0) with the terms accepted, Mis servicios,
Agregar línea (Móvil), Facturación, a bill (Ver Factura) and Estado de cuenta. A page behind a
step of the flow or a sign-in is reached in another context whose cookies are copied into the
fresh one, so its cache is empty but its session is the customer's.

The bytes are Chromium's own count (CDP Network.loadingFinished encodedDataLength: what came
over the wire, response headers included), summed by resource type. Each page is loaded
twice: the first visit (everything, htmx included) and a second visit in the same context
(the static files, fingerprinted and immutable, should come from the cache: HTML only).
Then the htmx fragments as the browser asks for them (ticket inline validation, the panel's
results after a filter, "Cargar más", Facturación's cycles when a line is picked), with
their bodies re-compressed here with gzip and br for comparison, and a bare Flask route's
answer.
Last, the whole flow (home → branch and RFC → ticket → invoice → PDF) under CDP network
emulation of Slow 3G (2,000 ms latency, 50,000 B/s each way), from a fresh context, once with
JavaScript and once without: the seconds and the round trips of each step (the requests the
customer waits for, counted where the server receives them: pages, form answers, redirect
hops, the download; not the static files nor the inline checks, listed beside), and the
whole flow against the issue's ≤ 15 s and ≤ 6 round trips. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import os
import platform
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any directory
os.environ.setdefault("SECRET_KEY", "bench-secret-key")  # no instance/secret_key written

import brotli  # noqa: E402
import stamping  # noqa: E402 (the sibling bench: its app builder)
from flask import Flask  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from webapp import crypto  # noqa: E402
from webapp.billing import terms  # noqa: E402
from webapp.demo.invoices import (  # noqa: E402
    CUSTOMER_EMAIL,
    CUSTOMER_PASSWORD,
    demo_customer,
    load_invoices,
)
from webapp.demo.services import (  # noqa: E402
    SLUG,
    load_history,
    load_services_demo,
    mobile_number,
)
from webapp.extensions import db  # noqa: E402
from webapp.models import LineHolder, ServiceBill, ServiceLine, Ticket, TicketStatus  # noqa: E402
from webapp.wiring import stamping as app_stamping  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KB = 1024
BUDGET_HTML_CSS = 14 * KB
BUDGET_FIRST_VISIT = 45 * KB
BUDGET_FRAGMENT = 3 * KB
SLOW_3G = {
    "offline": False,
    "latency": 2000,
    "downloadThroughput": 50_000,
    "uploadThroughput": 50_000,
}
RFC = "XOJI740919U48"
HISTORY = 30  # invoices of the signed-in customer
RECEPTOR = {"nombre": "INGRID XODAR JIMENEZ", "cp": "76028", "regimen": "612", "uso": "G03"}
BUCKETS = {"Document": "html", "Stylesheet": "css", "Script": "js", "Image": "img"}
SERVICES = f"/servicios/{SLUG}"  # the demo telecom provider's Mis servicios
SERVICE_ACCOUNTS, SERVICE_LINES, BILLED_MONTHS = 50, 80, 2


# --- The app, served on loopback ----------------------------------------------------------------


def build_app(directory: Path) -> Flask:
    """The stamping bench's app (demo merchant loaded), plus a customer with a history."""
    app = stamping.build_app(directory)
    with app.app_context():
        customer = demo_customer(db.session, datetime.now(UTC))
        db.session.commit()
        load_invoices(db.session, customer.account, HISTORY, datetime.now(UTC), seed=7)
    return app


def load_services(app: Flask) -> dict:
    """The demo telecom provider with two months billed; the demo customer holds the line
    mobile_number(0) and has accepted the current terms. Answers {"line": its id, "bill": the
    public id of its account's newest bill}."""
    with app.app_context():
        now, session = datetime.now(UTC), db.session
        issuer = load_services_demo(
            session,
            crypto.cipher_from_config(app.config),
            now,
            accounts=SERVICE_ACCOUNTS,
            lines=SERVICE_LINES,
        ).issuer
        load_history(session, app_stamping(), now, months=BILLED_MONTHS)
        account = demo_customer(session, now).account
        line = session.scalar(
            select(ServiceLine).where(
                ServiceLine.issuer_id == issuer.id, ServiceLine.number == mobile_number(0)
            )
        )
        session.add(LineHolder(account_id=account.id, line_id=line.id, verified_at=now))
        terms.accept(session, account.id, terms.current(session, issuer.id), now)
        session.commit()
        bill = session.scalar(
            select(ServiceBill.public_id)
            .where(ServiceBill.service_account_id == line.service_account_id)
            .order_by(ServiceBill.period.desc())
            .limit(1)
        )
        if bill is None:
            raise RuntimeError("load_history billed nothing for the line's account")
        return {"line": line.id, "bill": bill}


def fresh_tickets(app: Flask, count: int) -> list[dict]:
    """The newest open tickets of Sucursal Centro Histórico, as the form types them."""
    with app.app_context():
        tickets = db.session.scalars(
            select(Ticket)
            .where(Ticket.status == TicketStatus.OPEN)
            .order_by(Ticket.sold_at.desc())
            .limit(200)
        ).all()
        return [
            {"order": t.order_number, "number": t.ticket_number, "total": f"{t.total:.2f}"}
            for t in tickets
            if t.branch.code == "CENTRO"
        ][:count]


def bare_app() -> Flask:
    bare = Flask("bare")

    @bare.get("/")
    def hello():
        return "ok"

    return bare


class _Quiet(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as werkzeug's threaded server has it

    def log_request(self, *args, **kwargs) -> None:
        pass


class Server:
    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()


# --- Counting bytes with CDP ------------------------------------------------------------------


@dataclass
class Request:
    url: str = ""
    type: str = ""
    method: str = "GET"
    status: int = 0
    wire: int = 0  # loadingFinished encodedDataLength (+ the redirects before it)
    headers: int = 0  # response header bytes (headersText), redirects included
    body: int = 0  # decoded body bytes (dataReceived)
    encoding: str = ""
    accept_encoding: str = ""
    cached: bool = False
    redirects: int = 0
    done: bool = False

    @property
    def bucket(self) -> str:
        if "favicon" in self.url:
            return "img"
        return BUCKETS.get(self.type, "xhr" if self.type in ("XHR", "Fetch") else "other")


class Meter:
    """Every request of one page (a CDP session on it), from start() to the next start()."""

    def __init__(self, page) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.requests: dict[str, Request] = defaultdict(Request)
        on = self.cdp.on
        on("Network.requestWillBeSent", self._sent)
        on("Network.requestWillBeSentExtraInfo", self._sent_extra)
        on("Network.responseReceived", self._received)
        on("Network.responseReceivedExtraInfo", self._received_extra)
        on("Network.dataReceived", self._data)
        on("Network.loadingFinished", self._finished)
        on("Network.requestServedFromCache", self._from_cache)
        self.cdp.send("Network.enable")

    def start(self) -> None:
        self.requests = defaultdict(Request)

    def _sent(self, e) -> None:
        r = self.requests[e["requestId"]]
        if e.get("redirectResponse"):
            r.redirects += 1
            r.wire += int(e["redirectResponse"].get("encodedDataLength") or 0)
        r.url, r.type, r.method = e["request"]["url"], e.get("type", ""), e["request"]["method"]

    def _sent_extra(self, e) -> None:
        headers = {k.lower(): v for k, v in e.get("headers", {}).items()}
        self.requests[e["requestId"]].accept_encoding = headers.get("accept-encoding", "")

    def _received(self, e) -> None:
        r, response = self.requests[e["requestId"]], e["response"]
        r.type = e.get("type", r.type)
        r.status = response["status"]
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        r.encoding = headers.get("content-encoding", "")
        if response.get("fromDiskCache") or response.get("fromServiceWorker"):
            r.cached = True

    def _received_extra(self, e) -> None:
        self.requests[e["requestId"]].headers += len(e.get("headersText") or "")

    def _data(self, e) -> None:
        self.requests[e["requestId"]].body += int(e.get("dataLength") or 0)

    def _finished(self, e) -> None:
        r = self.requests[e["requestId"]]
        r.wire += int(e.get("encodedDataLength") or 0)
        r.done = True

    def _from_cache(self, e) -> None:
        self.requests[e["requestId"]].cached = True

    def settle(self) -> list[Request]:
        """Wait until the network is quiet, then the requests seen since start()."""
        return [r for _, r in self.settle_ids()]

    def settle_ids(self) -> list[tuple[str, Request]]:
        self.page.wait_for_load_state("networkidle")
        return [(rid, r) for rid, r in self.requests.items() if r.url.startswith("http")]

    def body(self, request_id: str) -> bytes:
        answer = self.cdp.send("Network.getResponseBody", {"requestId": request_id})
        if answer.get("base64Encoded"):
            return base64.b64decode(answer["body"])
        return answer["body"].encode()


@dataclass
class Weight:
    label: str
    first: list[Request]
    warm: list[Request] = field(default_factory=list)

    @staticmethod
    def sums(requests: list[Request]) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in requests:
            out[r.bucket] += r.wire
            out["total"] += r.wire
            out["headers"] += r.headers
            out["count"] += 1
            out["cached"] += r.cached or (r.wire == 0 and r.done)
        return out


# --- Driving the pages --------------------------------------------------------------------------


def new_page(browser, cookies=None):
    context = browser.new_context(locale="es-MX")
    if cookies:
        context.add_cookies(cookies)
    page = context.new_page()
    return context, page, Meter(page)


def weigh(browser, base: str, label: str, path: str, cookies=None, keep: bool = False):
    """First visit in a fresh context (empty cache), then a second visit in the same one."""
    context, page, meter = new_page(browser, cookies)
    meter.start()
    page.goto(base + path)
    first = meter.settle()
    meter.start()
    page.goto(base + path)
    warm = meter.settle()
    weight = Weight(label, first, warm)
    if keep:
        return weight, (context, page, meter)
    context.close()
    return weight, None


MERCHANT = "TIENDAS DEMO LA GAVIOTA"


def to_branch(page, base: str) -> None:
    """Home → the merchant's branch step: the home page lists a few merchants (the panel's
    history added some), or has one "Facturar un ticket" (one merchant, or a long list on
    ¿Dónde compró?)."""
    page.goto(base + "/")
    merchant = page.get_by_role("link", name=MERCHANT)
    if merchant.count():
        merchant.click()
    else:
        page.get_by_role("link", name="Facturar un ticket").click()
        page.wait_for_url("**/facturar/**")
        if page.url.endswith("/facturar/"):
            page.get_by_role("link", name=MERCHANT).click()
    page.wait_for_url("**/facturar/demo/")


def to_ticket(page) -> None:
    """The branch step: the branch and the RFC on one page, one POST to the ticket step (its
    address pushed by htmx; without JavaScript the page answers the POST's address)."""
    page.get_by_label("Sucursal Centro Histórico").check()
    page.get_by_label("RFC", exact=True).fill(RFC)
    page.get_by_role("button", name="Siguiente").click()
    expect(page.locator("h1")).to_have_text("Datos del ticket")


def htmx_idle(page) -> None:
    """No htmx request in flight (htmx marks the element that asked with .htmx-request)."""
    expect(page.locator(".htmx-request")).to_have_count(0)


def fill_ticket(page, ticket: dict) -> None:
    page.get_by_label("Número de orden", exact=True).fill(ticket["order"])
    page.get_by_label("Número de ticket", exact=True).fill(ticket["number"])
    page.get_by_label("Total del ticket", exact=True).fill(ticket["total"])
    page.get_by_label("Nombre o razón social").fill(RECEPTOR["nombre"])
    page.get_by_label("Código postal").fill(RECEPTOR["cp"])
    page.get_by_label("Régimen fiscal").select_option(RECEPTOR["regimen"])
    # The régimen's answer re-renders the uso list (out of band): wait for it, or the late
    # answer would put back the uso that was chosen when the régimen was asked about.
    htmx_idle(page)
    page.get_by_label("Uso del CFDI").select_option(RECEPTOR["uso"])
    page.get_by_label("Correo electrónico").fill("ingrid@example.com")
    htmx_idle(page)


def generate(page) -> str:
    page.get_by_role("button", name="Generar factura").click()
    page.wait_for_url("**/facturar/factura/**")
    title = page.locator("h1").inner_text()
    if title != "Su factura está lista":
        raise RuntimeError(f"the invoice page says {title!r}")
    return page.url


def sign_in(page, base: str) -> None:
    if not page.url.endswith("/cuenta/entrar"):
        page.goto(base + "/cuenta/entrar")
    page.get_by_label("RFC o correo electrónico").fill(CUSTOMER_EMAIL)
    page.get_by_label("Contraseña", exact=True).fill(CUSTOMER_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url("**/cuenta/")


@dataclass
class Fragment:
    label: str
    request: Request
    raw: bytes


def fragment(meter: Meter, label: str, act, match: str) -> Fragment:
    """Do `act` on the page and weigh the htmx request whose URL contains `match`."""
    meter.start()
    act()
    htmx_idle(meter.page)
    found = [
        (rid, r) for rid, r in meter.settle_ids() if r.bucket == "xhr" and match in r.url and r.done
    ]
    if not found:
        raise RuntimeError(f"no htmx request to {match} for {label}")
    rid, request = found[-1]
    return Fragment(label, request, meter.body(rid))


def fragments_of_ticket(meter: Meter, ticket: dict) -> list[Fragment]:
    page = meter.page
    # Typed without events, so that only the total asks the server when it is left.
    page.evaluate(
        "([o, n]) => { document.getElementById('order_number').value = o;"
        " document.getElementById('ticket_number').value = n; }",
        [ticket["order"], ticket["number"]],
    )
    total = page.get_by_label("Total del ticket", exact=True)

    def wrong():
        total.fill("1.00")
        total.press("Tab")

    def right():
        total.fill(ticket["total"])
        total.press("Tab")

    return [
        fragment(meter, "ticket: total that does not match", wrong, "/campo/total"),
        fragment(meter, "ticket: total that matches", right, "/campo/total"),
    ]


def fragments_of_panel(meter: Meter) -> list[Fragment]:
    page = meter.page
    more = fragment(
        meter,
        "panel: Cargar más (HX-Target mas-1)",
        lambda: page.get_by_role("link", name="Cargar más").click(),
        "/facturas/",
    )
    full = fragment(
        meter,
        "panel: orden=-total (HX-Target resultados)",
        lambda: page.get_by_label("Ordenar por").select_option("-total"),
        "orden=-total",
    )
    results = fragment(
        meter,
        "panel: + estado=vigente (HX-Target resultados)",
        lambda: page.get_by_label("Estado").select_option("vigente"),
        "estado=vigente",
    )
    return [full, results, more]


def fragments_of_bills(meter: Meter, line_id: int) -> list[Fragment]:
    """Facturación: a line picked in the picker (a GET form; htmx swaps #ciclos)."""
    page = meter.page

    def pick():
        page.get_by_label("Línea o cuenta").select_option(str(line_id))
        page.get_by_role("button", name="Consultar").click()

    return [
        fragment(meter, "Facturación: a line picked (HX-Target ciclos)", pick, f"linea={line_id}")
    ]


class Tally:
    """Every request the app answers, as the server saw it: the round trips of a step are
    counted where they arrive, so that a download (which CDP reports as no request of the
    page) and each hop of a redirect count too."""

    def __init__(self, app: Flask) -> None:
        self.seen: list[tuple[str, str, str]] = []  # method, path, HX-Target
        self._wsgi = app.wsgi_app
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_HX_TARGET", "")
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], target))
        return self._wsgi(environ, start_response)

    def mark(self) -> int:
        return len(self.seen)

    def since(self, mark: int) -> tuple[list[str], int, int]:
        """The round trips since `mark` ("METHOD /path"), the static files and the inline
        checks asked beside them."""
        trips, static, inline = [], 0, 0
        for method, path, target in self.seen[mark:]:
            if path.startswith("/static/"):
                static += 1
            elif target.startswith("campo-"):
                inline += 1
            else:
                trips.append(f"{method} {path}")
        return trips, static, inline


@dataclass
class Step:
    name: str
    seconds: float
    trips: list[str]
    static: int
    inline: int
    waited: bool = True  # False: the customer's typing, the inline checks answered meanwhile
    note: str = ""


@dataclass
class SlowFlow:
    javascript: bool
    steps: list[Step]

    @property
    def waits(self) -> list[Step]:
        return [s for s in self.steps if s.waited]


def slow_flow(browser, base: str, tally: Tally, ticket: dict, javascript: bool) -> SlowFlow:
    """Home → branch and RFC → ticket → invoice → PDF under Slow 3G from a fresh context
    (cold cache, no cookies); per step its seconds and its round trips."""
    context = browser.new_context(
        locale="es-MX", java_script_enabled=javascript, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(120_000)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    steps: list[Step] = []
    mark, begun = tally.mark(), time.perf_counter()

    def step(name: str, waited: bool = True) -> None:
        nonlocal mark, begun
        now = time.perf_counter()
        steps.append(Step(name, now - begun, *tally.since(mark), waited=waited))
        mark, begun = tally.mark(), now

    page.goto(base + "/")
    step("home (until load)")
    merchant = page.get_by_role("link", name=MERCHANT)
    (merchant if merchant.count() else page.get_by_role("link", name="Facturar un ticket")).click()
    page.wait_for_url("**/facturar/demo/")
    page.wait_for_load_state("load")
    step("branch and RFC page")
    to_ticket(page)
    page.wait_for_load_state("load")
    step("ticket page (POST answers it)")
    fill_ticket(page, ticket)
    step("typing the ticket (inline checks)", waited=False)
    generate(page)
    page.wait_for_load_state("load")
    step("Generar factura → invoice " + ("(its POST answers it)" if javascript else "(303, GET)"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar PDF").click()
    size = os.path.getsize(download.value.path())  # until it is all there
    step("Descargar PDF")
    # Chromium downloads in its browser process, where the page's CDP emulation does not
    # reach: the step counts what Slow 3G would take, its latency and the file at its rate.
    pdf = steps[-1]
    emulated = SLOW_3G["latency"] / 1000 + size / SLOW_3G["downloadThroughput"]
    pdf.note = f" ({size:,} B; {pdf.seconds:.1f} s unthrottled, counted as Slow 3G's)"
    pdf.seconds = max(pdf.seconds, emulated)
    context.close()
    return SlowFlow(javascript, steps)


# --- Printing -----------------------------------------------------------------------------------


def kb(n: float) -> str:
    return f"{n / KB:6.1f}"


def mark(value: int, budget: int) -> str:
    return "ok  " if value <= budget else f"OVER +{(value - budget) / KB:.1f}"


def print_pages(weights: list[Weight]) -> None:
    print(
        "Pages, first visit in a fresh context (KB on the wire, response headers included; "
        "KB = 1024 bytes)"
    )
    head = (
        f"{'page':<30}{'HTML':>6}{'CSS':>7}{'JS':>7}{'img':>7}{'other':>7}{'total':>7}"
        f"{'(hdrs)':>8}  {'HTML+CSS ≤ 14':<16}{'first ≤ 45':<14}{'2nd visit':>10}"
    )
    print(head)
    print("-" * len(head))
    for w in weights:
        s, warm = Weight.sums(w.first), Weight.sums(w.warm)
        html_css = s["html"] + s["css"]
        warm_note = f"{kb(warm['total'])}"
        others = [r for r in w.warm if r.bucket != "html" and r.wire > 0]
        if others:
            warm_note += f" +{len(others)} refetched"
        print(
            f"{w.label:<30}{kb(s['html'])}{kb(s['css']):>7}{kb(s['js']):>7}{kb(s['img']):>7}"
            f"{kb(s['other']):>7}{kb(s['total']):>7}{kb(s['headers']):>8}  "
            f"{kb(html_css)} {mark(html_css, BUDGET_HTML_CSS):<9}"
            f"{kb(s['total'])} {mark(s['total'], BUDGET_FIRST_VISIT):<7}{warm_note:>10}"
        )


def print_requests(w: Weight) -> None:
    print(f"  {w.label}: the requests of the first visit")
    for r in w.first:
        name = r.url.split("//", 1)[-1].split("/", 1)[-1][:60]
        print(
            f"    {r.method:<4} /{name:<60} {r.status:>3} {r.bucket:<5} wire {r.wire:>6} B "
            f"(headers {r.headers:>4}, body {r.body:>6} B decoded, "
            f"{r.encoding or 'identity'})"
        )


def print_slow_flow(flow: SlowFlow) -> None:
    print()
    print(
        "Slow 3G (CDP: 2,000 ms latency, 50,000 B/s down and up), a fresh context "
        f"(cold cache), JavaScript {'on' if flow.javascript else 'off'}: "
        "home → branch and RFC → ticket → invoice → PDF"
    )
    print(f"  {'step':<40}{'seconds':>8}{'round trips':>13}  requests (+ static, inline checks)")
    for s in flow.steps:
        trips = f"{len(s.trips):>13}" if s.waited else f"{'(' + str(len(s.trips)) + ')':>13}"
        extra = "".join(
            f", +{n} {what}" for n, what in ((s.static, "static"), (s.inline, "inline")) if n
        )
        listed = " · ".join(s.trips) or "-"
        print(f"  {s.name:<40}{s.seconds:8.1f}{trips}  {listed}{extra}{s.note}")
    waits = flow.waits
    seconds, trips = sum(s.seconds for s in waits), sum(len(s.trips) for s in waits)
    print(
        f"  {'whole flow (the waits)':<40}{seconds:8.1f}{trips:>13}  "
        f"budget ≤ 15 s {'ok' if seconds <= 15 else 'OVER'}, ≤ 6 round trips "
        f"{'ok' if trips <= 6 else 'OVER'}"
    )
    typing = sum(s.seconds for s in flow.steps if not s.waited)
    print(f"  {'  with the typing step':<40}{seconds + typing:8.1f}")


def print_fragments(fragments: list[Fragment], bare: Weight) -> None:
    print()
    print(
        "htmx fragments, as Chromium asked for them (budget 3 KB compressed). "
        "B = bytes; br/gzip: the decoded body re-compressed here (br quality 5, gzip 6)"
    )
    head = (
        f"{'fragment':<46}{'wire':>7}{'hdrs':>6}{'body':>7}{'raw':>7}{'gzip':>7}{'br':>7}"
        f"{'rows':>6}  {'≤ 3 KB':<10}"
    )
    print(head)
    print("-" * len(head))
    for f in fragments:
        r = f.request
        body = r.wire - r.headers
        gz, br = len(gzip.compress(f.raw, 6)), len(brotli.compress(f.raw, quality=5))
        rows: int | str = ""
        if "panel" in f.label:
            rows = f.raw.count(b'name="f" value=')
        elif "ciclos" in f.label:
            rows = f.raw.count(b"<li>")  # the cycles listed
        print(
            f"{f.label:<46}{r.wire:>7}{r.headers:>6}{body:>7}{len(f.raw):>7}{gz:>7}{br:>7}"
            f"{rows:>6}  {mark(r.wire, BUDGET_FRAGMENT):<10} ({r.encoding or 'identity'})"
        )
    s = Weight.sums([r for r in bare.first if r.bucket == "html"])  # not its /favicon.ico 404
    label = "bare Flask route (GET / → 'ok')"
    print(f"{label:<46}{s['total']:>7}{s['headers']:>6}{s['total'] - s['headers']:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-slow", action="store_true", help="no Slow 3G flow")
    parser.add_argument("--requests", action="store_true", help="list every request")
    args = parser.parse_args()
    begun = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="autofactura-weight-") as directory:
        app = build_app(Path(directory))
        tickets = fresh_tickets(app, 4)
        held = load_services(app)
        setup = time.perf_counter() - begun
        tally = Tally(app)
        server, bare_server = Server(app), Server(bare_app())
        base = server.url
        weights: list[Weight] = []
        fragments: list[Fragment] = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                version = browser.version
                for label, path in (("home /", "/"), ("branch /facturar/demo/", "/facturar/demo/")):
                    weights.append(weigh(browser, base, label, path)[0])

                # The flow in one context; each step weighed in a fresh one with its cookies.
                flow = browser.new_context(locale="es-MX")
                page = flow.new_page()
                to_branch(page, base)
                to_ticket(page)
                weights.append(  # the RFC step alone: "Cambiar RFC", and kiosks
                    weigh(browser, base, "RFC step", "/facturar/demo/rfc", flow.cookies())[0]
                )
                ticket_weight, (ctx, _, meter) = weigh(
                    browser, base, "ticket step", "/facturar/demo/ticket", flow.cookies(), keep=True
                )
                weights.append(ticket_weight)
                fragments += fragments_of_ticket(meter, tickets[1])
                ctx.close()
                fill_ticket(page, tickets[0])
                invoice_url = generate(page)
                path = "/" + invoice_url.split("/", 3)[3]
                weights.append(
                    weigh(browser, base, "invoice (result page)", path, flow.cookies())[0]
                )
                flow.close()

                for label, path in (
                    ("sign-in /cuenta/entrar", "/cuenta/entrar"),
                    ("register /cuenta/registro", "/cuenta/registro"),
                ):
                    weights.append(weigh(browser, base, label, path)[0])

                # Signing in changes the session cookie: do the cached static files still
                # serve (their answers say Vary: Cookie), or does the browser fetch them again?
                account = browser.new_context(locale="es-MX")
                page = account.new_page()
                meter = Meter(page)
                page.goto(base + "/cuenta/entrar")
                meter.settle()
                meter.start()
                sign_in(page, base)
                after_sign_in = [r for r in meter.settle() if r.bucket != "html"]
                cookies = account.cookies()
                weights.append(weigh(browser, base, "Mi cuenta /cuenta/", "/cuenta/", cookies)[0])
                panel_weight, (ctx, _, meter) = weigh(
                    browser, base, f"Mis facturas ({HISTORY} inv.)", "/facturas/", cookies, True
                )
                weights.append(panel_weight)
                fragments += fragments_of_panel(meter)
                ctx.close()

                # Mis servicios (issue #15), the same signed-in customer: it holds a line.
                for label, path in (
                    ("svc landing (guest)", f"{SERVICES}/"),
                    ("svc registro (guest)", f"{SERVICES}/registro"),
                ):
                    weights.append(weigh(browser, base, label, path)[0])
                for label, path in (
                    ("svc Mis servicios", f"{SERVICES}/mis-servicios"),
                    ("svc Agregar línea (MOVIL)", f"{SERVICES}/lineas/agregar?tipo=MOVIL"),
                ):
                    weights.append(weigh(browser, base, label, path, cookies)[0])
                bills_weight, (ctx, _, meter) = weigh(
                    browser, base, "svc Facturación", f"{SERVICES}/facturacion", cookies, True
                )
                weights.append(bills_weight)
                fragments += fragments_of_bills(meter, held["line"])
                ctx.close()
                for label, path in (
                    ("svc a bill (Ver Factura)", f"{SERVICES}/facturacion/{held['bill']}"),
                    ("svc Estado de cuenta", f"{SERVICES}/estado-de-cuenta"),
                ):
                    weights.append(weigh(browser, base, label, path, cookies)[0])
                account.close()

                bare = weigh(browser, bare_server.url, "bare Flask route", "/")[0]
                slow = (
                    []
                    if args.skip_slow
                    else [
                        slow_flow(browser, base, tally, tickets[2], javascript=True),
                        slow_flow(browser, base, tally, tickets[3], javascript=False),
                    ]
                )
                browser.close()
        finally:
            server.close()
            bare_server.close()
            app.extensions["db"].engine.dispose()

    first = next(r for r in weights[0].first if r.bucket == "html")
    print(
        f"Autofactura page-weight bench — Python {platform.python_version()}, "
        f"{platform.machine()}, Chromium {version} headless (Playwright), werkzeug on loopback"
    )
    print(
        f"Chromium sent Accept-Encoding: {first.accept_encoding!r}; "
        f"pages came back {first.encoding or 'uncompressed'}; setup {setup:.1f} s"
    )
    print()
    print_pages(weights)
    print(
        "  2nd visit: KB on the wire when the same page is loaded again in the same context "
        "(static files from the cache: only the HTML should cross)"
    )
    refetched = [r for r in after_sign_in if r.wire > 0]
    print(
        f"  sign-in → Mi cuenta in one context (new session cookie): {len(after_sign_in)} "
        f"static requests, {len(refetched)} crossed the wire "
        f"({sum(r.wire for r in refetched)} B"
        + "".join(f", {r.url.rsplit('/', 1)[-1]} {r.status}" for r in refetched)
        + ")"
    )
    print()
    for w in weights:
        if args.requests or w.label.startswith(("home", "Mis facturas")):
            print_requests(w)
    print_fragments(fragments, bare)
    for flow in slow:
        print_slow_flow(flow)
    print(f"\ntotal run {time.perf_counter() - begun:.1f} s")


if __name__ == "__main__":
    main()
