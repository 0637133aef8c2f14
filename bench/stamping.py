"""Invoicing benchmark through the web layer: inline ticket validation and full stamping.

    .venv/bin/python bench/stamping.py [--n 200] [--http] [--concurrency 1]

Builds the app on a temporary SQLite database (migrated with webapp.migrate.upgrade, demo data
from webapp.demo.data.load_demo, CSRF on as in production), walks the branch and RFC steps once
per branch, then measures, after a warm-up:

  (a) the ticket-validation fragment: POST /facturar/demo/ticket/campo/total with HX-Request,
      a whole valid ticket form, as htmx sends it when the customer leaves the field;
  (b) a full sandbox stamping with PDF: the ticket step's "Generar factura" POST for a fresh
      open ticket each time (reserve, build, sign, XSD, sandbox PAC, PDF, email queued, 303);
  (c) a bare Flask route (one route returning a short string), measured the same way.

The Flask test client is the default transport; --http serves both apps with werkzeug on
loopback (HTTP/1.1 keep-alive) and measures with http.client, and --concurrency C runs C
clients at once (C threads) for each of (a), (b) and (c). Then the breakdown of a stamping,
timing webapp.cfdi's functions directly (median of 20 after warm-up). Prints median and p95
in ms, the ratio to the bare route and the product's budgets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any directory
os.environ.setdefault("SECRET_KEY", "bench-secret-key")  # no instance/secret_key written

from flask import Flask  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from webapp import crypto  # noqa: E402
from webapp.app import create_app  # noqa: E402
from webapp.demo.data import load_demo  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.issuing.lookup import check_ticket  # noqa: E402
from webapp.migrate import upgrade  # noqa: E402
from webapp.models import Branch, Issuer, Ticket, TicketStatus  # noqa: E402

BUDGETS_MS = {"validation": 20.0, "stamping": 100.0}  # p95, /work/shared/PRODUCT.md
RFC = "XOJI740919U48"
RECEPTOR = {
    "nombre": "INGRID XODAR JIMENEZ",
    "cp": "76028",
    "regimen": "612",
    "uso_cfdi": "G03",
    "email": "ingrid@example.com",
    "forma_pago": "01",
}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SESSION = re.compile(r"(?:^|,\s*)session=([^;,]*)")
WARMUP = {"validation": 30, "stamping": 8, "bare": 50}
BREAKDOWN_RUNS = 20


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


# --- Transports: the same requests through the test client or a loopback server -------------


@dataclass
class Answer:
    status: int
    location: str
    cookie: str | None  # the session cookie set by the answer, if any
    body: bytes


class TestClientTransport:
    name = "Flask test client"

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._local = threading.local()

    def request(self, method: str, path: str, data=None, headers=None, cookie=None) -> Answer:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.app.test_client(use_cookies=False)
        headers = dict(headers or {})
        if cookie:
            headers["Cookie"] = f"session={cookie}"
        r = client.open(path, method=method, data=data, headers=headers)
        return Answer(
            r.status_code,
            r.headers.get("Location", ""),
            _session(r.headers.getlist("Set-Cookie")),
            r.get_data(),
        )

    def close(self) -> None:
        pass


class _KeepAlive(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args, **kwargs) -> None:  # quiet
        pass


class HttpTransport:
    name = "werkzeug server on loopback, http.client (HTTP/1.1 keep-alive)"

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_KeepAlive)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_port
        self._local = threading.local()

    def request(self, method: str, path: str, data=None, headers=None, cookie=None) -> Answer:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=60
            )
        headers = dict(headers or {})
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if cookie:
            headers["Cookie"] = f"session={cookie}"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return Answer(
            response.status,
            response.getheader("Location") or "",
            _session(response.msg.get_all("Set-Cookie") or []),
            payload,
        )

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()


def _session(set_cookies: Iterable[str]) -> str | None:
    for header in set_cookies:
        if header.startswith("session="):
            return header.split(";", 1)[0].removeprefix("session=")
    return None


# --- Measuring -------------------------------------------------------------------------------


def timed(call: Callable[[], None]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run(calls: list[Callable[[], None]], concurrency: int) -> tuple[list[float], float]:
    """Latencies of `calls` (seconds) with `concurrency` clients at once, and the wall time."""
    start = time.perf_counter()
    if concurrency <= 1:
        times = [timed(c) for c in calls]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            times = list(pool.map(timed, calls))
    return times, time.perf_counter() - start


@dataclass
class Figure:
    label: str
    times: list[float]
    wall: float

    @property
    def median(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95) * 1000


# --- The app, its data and the flow ------------------------------------------------------------


@dataclass
class Flow:
    """A customer past the branch and RFC steps of one branch: session cookie and CSRF token."""

    branch_id: int
    cookie: str
    csrf: str


def build_app(directory: Path) -> Flask:
    url = f"sqlite:///{directory / 'bench.db'}"
    upgrade(url)
    app = create_app(
        {
            "SECRET_KEY": os.environ["SECRET_KEY"],
            "DATABASE_URL": url,
            "MAIL_URL": f"file://{directory / 'mail'}",
            "BASE_URL": "http://127.0.0.1",
            "PAC": "sandbox",
            "PAC_SANDBOX_DIR": str(directory / "sandbox-pac"),
            "DEBUG": False,
            "TESTING": False,
        }
    )
    app.logger.disabled = True
    with app.app_context():
        load_demo(db.session, crypto.cipher_from_config(app.config))
    return app


def invoiceable_tickets(app: Flask) -> list[dict]:
    """Every demo ticket the flow would accept now, newest first, as the form types it."""
    now = datetime.now(UTC)
    with app.app_context():
        found = []
        for branch in db.session.scalars(select(Branch).order_by(Branch.id)):
            tickets = db.session.scalars(
                select(Ticket)
                .where(Ticket.branch_id == branch.id, Ticket.status == TicketStatus.OPEN)
                .order_by(Ticket.sold_at.desc())
            ).all()
            for t in tickets:
                check = check_ticket(
                    db.session,
                    branch,
                    ticket_number=t.ticket_number,
                    order_number=t.order_number,
                    total=t.total,
                    now=now,
                )
                if check.ok:
                    found.append(
                        {
                            "branch_id": branch.id,
                            "order_number": t.order_number,
                            "ticket_number": t.ticket_number,
                            "total": f"{t.total:.2f}",
                        }
                    )
        return found


def start_flow(transport, branch_id: int) -> Flow:
    """Branch and RFC steps, with the CSRF token of the session, as a browser does them."""
    page = transport.request("GET", "/facturar/demo/")
    csrf = CSRF.search(page.body.decode()).group(1)
    cookie = page.cookie
    r = transport.request(
        "POST", "/facturar/demo/", {"branch": branch_id, "csrf_token": csrf}, cookie=cookie
    )
    assert r.status == 303, (r.status, r.body[:500])
    cookie = r.cookie or cookie
    r = transport.request(
        "POST", "/facturar/demo/rfc", {"rfc": RFC, "csrf_token": csrf}, cookie=cookie
    )
    assert r.status == 303 and r.location.endswith("/ticket"), (r.status, r.body[:500])
    return Flow(branch_id, r.cookie or cookie, csrf)


def form(ticket: dict, flow: Flow, **extra) -> dict:
    return {
        "order_number": ticket["order_number"],
        "ticket_number": ticket["ticket_number"],
        "total": ticket["total"],
        "key": secrets.token_urlsafe(24),
        "action": "generate",
        "csrf_token": flow.csrf,
        **RECEPTOR,
        **extra,
    }


def validation_call(transport, flow: Flow, ticket: dict) -> Callable[[], None]:
    data = form(ticket, flow)

    def call() -> None:
        r = transport.request(
            "POST",
            "/facturar/demo/ticket/campo/total",
            data,
            headers={"HX-Request": "true", "HX-Target": "campo-total"},
            cookie=flow.cookie,
        )
        if r.status != 200 or b"field-error" in r.body:
            raise RuntimeError(f"validation answered {r.status}: {r.body[:300]!r}")

    return call


def stamping_call(transport, flow: Flow, ticket: dict) -> Callable[[], None]:
    data = form(ticket, flow)

    def call() -> None:
        r = transport.request("POST", "/facturar/demo/ticket", data, cookie=flow.cookie)
        if r.status != 303 or "/facturar/factura/" not in r.location:
            raise RuntimeError(f"stamping answered {r.status}: {r.body[:300]!r}")

    return call


def bare_app() -> Flask:
    app = Flask("bare")
    app.add_url_rule("/bare", "bare", lambda: "ok")
    return app


def bare_call(transport) -> Callable[[], None]:
    def call() -> None:
        r = transport.request("GET", "/bare")
        if r.status != 200:
            raise RuntimeError(f"bare route answered {r.status}")

    return call


# --- Breakdown: webapp.cfdi's functions directly ---------------------------------------------


def breakdown(app: Flask, ticket_id_source: list[dict]) -> dict[str, float]:
    """Median ms of each step of stamping one ticket's invoice, outside the web layer."""
    # From the modules: once webapp.cfdi.builder is imported, `from webapp.cfdi import build`
    # gives the submodule, not the function.
    from webapp.cfdi.builder import build, sign
    from webapp.cfdi.draft import Draft
    from webapp.cfdi.pdf import render_pdf
    from webapp.cfdi.xsd import validate
    from webapp.invoicing import services
    from webapp.issuing.issue import ticket_lines

    sample = ticket_id_source[0]
    steps: dict[str, list[float]] = {
        "build": [],
        "sign": [],
        "build+sign": [],
        "XSD validate": [],
        "PAC stamp": [],
        "PDF render": [],
    }
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        branch = db.session.get(Branch, sample["branch_id"])
        ticket = db.session.scalar(
            select(Ticket).where(
                Ticket.branch_id == branch.id, Ticket.ticket_number == sample["ticket_number"]
            )
        )
        lines = tuple(ticket_lines(ticket))
        signer = services.signer_for(issuer)
        pac = services.pac()
        for run_index in range(5 + BREAKDOWN_RUNS):
            draft = Draft(
                emisor_rfc=issuer.rfc,
                emisor_nombre=issuer.legal_name,
                emisor_regimen=issuer.regimen_fiscal,
                lugar_expedicion=branch.cp,
                serie="BENCH",
                folio=900_000 + run_index,
                fecha=datetime.now(UTC).replace(microsecond=0),
                receptor_rfc=RFC,
                receptor_nombre=RECEPTOR["nombre"],
                receptor_cp=RECEPTOR["cp"],
                receptor_regimen=RECEPTOR["regimen"],
                uso_cfdi=RECEPTOR["uso_cfdi"],
                forma_pago=RECEPTOR["forma_pago"],
                metodo_pago="PUE",
                moneda="MXN",
                lines=lines,
            )
            marks = [time.perf_counter()]
            comprobante = build(draft)
            marks.append(time.perf_counter())
            xml = sign(comprobante, signer)
            marks.append(time.perf_counter())
            validate(xml)
            marks.append(time.perf_counter())
            stamped = pac.stamp(xml)
            marks.append(time.perf_counter())
            render_pdf(stamped.xml, branch_name=branch.name, sandbox=True)
            marks.append(time.perf_counter())
            if run_index < 5:  # warm-up
                continue
            d = [b - a for a, b in zip(marks, marks[1:], strict=False)]
            for name, value in zip(
                ("build", "sign", "XSD validate", "PAC stamp", "PDF render"), d, strict=True
            ):
                steps[name].append(value)
            steps["build+sign"].append(d[0] + d[1])
    return {name: statistics.median(values) * 1000 for name, values in steps.items()}


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="requests measured per figure")
    parser.add_argument("--http", action="store_true", help="a real server on loopback")
    parser.add_argument("--concurrency", type=int, default=1, help="clients at once")
    args = parser.parse_args()
    transport_class = HttpTransport if args.http else TestClientTransport

    begun = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autofactura-bench-") as directory:
        app = build_app(Path(directory))
        tickets = invoiceable_tickets(app)
        needed = 1 + WARMUP["stamping"] + args.n
        if len(tickets) < needed:
            sys.exit(f"only {len(tickets)} invoiceable demo tickets; --n at most {needed - 1}")
        setup = time.perf_counter() - begun

        transport = transport_class(app)
        bare_transport = transport_class(bare_app())
        try:
            flows = {b: start_flow(transport, b) for b in sorted({t["branch_id"] for t in tickets})}
            probe, to_stamp = tickets[0], tickets[1:needed]

            # (a) inline validation of a valid ticket, the same one each time (read only)
            check = validation_call(transport, flows[probe["branch_id"]], probe)
            run([check] * WARMUP["validation"], 1)
            validation = Figure("(a) validation fragment", *run([check] * args.n, args.concurrency))

            # (b) full stamping, a fresh ticket each time
            calls = [stamping_call(transport, flows[t["branch_id"]], t) for t in to_stamp]
            run(calls[: WARMUP["stamping"]], 1)
            stamping = Figure(
                "(b) stamping with PDF", *run(calls[WARMUP["stamping"] :], args.concurrency)
            )

            # (c) the bare route, the same way
            bare = bare_call(bare_transport)
            run([bare] * WARMUP["bare"], 1)
            bare_figure = Figure("(c) bare Flask route", *run([bare] * args.n, args.concurrency))
        finally:
            transport.close()
            bare_transport.close()

        steps = breakdown(app, [probe])
        app.extensions["db"].engine.dispose()

    print(
        f"Autofactura invoicing bench — Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, SQLite (temporary file)"
    )
    print(
        f"transport: {transport_class.name}; concurrency {args.concurrency}; "
        f"n = {args.n} per figure after warm-up; setup (migrate + demo) {setup:.1f} s; "
        f"{len(tickets)} invoiceable demo tickets"
    )
    print()
    print(f"{'':<28}{'median ms':>10}{'p95 ms':>10}{'× bare (median / p95)':>24}  budget p95")
    for figure, budget in (
        (validation, BUDGETS_MS["validation"]),
        (stamping, BUDGETS_MS["stamping"]),
        (bare_figure, None),
    ):
        ratio = (
            f"{figure.median / bare_figure.median:8.1f} / {figure.p95 / bare_figure.p95:<8.1f}"
            if figure is not bare_figure
            else f"{'1.0':>8} / {'1.0':<8}"
        )
        verdict = (
            f"≤ {budget:.0f} ms {'PASS' if figure.p95 <= budget else 'OVER'}" if budget else ""
        )
        print(f"{figure.label:<28}{figure.median:10.2f}{figure.p95:10.2f}{ratio:>24}  {verdict}")
    if args.concurrency > 1:
        for figure in (validation, stamping, bare_figure):
            print(f"  {figure.label}: {len(figure.times) / figure.wall:.0f} requests/s")
    print()
    print(f"One stamping, webapp.cfdi's functions directly (median of {BREAKDOWN_RUNS}, ms):")
    for name in ("build+sign", "XSD validate", "PAC stamp", "PDF render"):
        detail = (
            f"   (build {steps['build']:.2f} + sign {steps['sign']:.2f})"
            if name == "build+sign"
            else ""
        )
        print(f"  {name:<26}{steps[name]:10.2f}{detail}")
    direct = sum(steps[n] for n in ("build+sign", "XSD validate", "PAC stamp", "PDF render"))
    print(f"  {'sum':<26}{direct:10.2f}")
    print(
        f"  web + database share of the request (median): "
        f"{stamping.median - direct:.2f} ms ({(stamping.median - direct) / stamping.median:.0%})"
    )
    print(f"\ntotal run {time.perf_counter() - begun:.1f} s")


if __name__ == "__main__":
    main()
