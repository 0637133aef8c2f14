"""Stamping benchmark through the web layer: "Generar factura" at 1, 2 and 4 clients, beside a
naive satcfdi path and a bare route measured in the same run, and the PDF's first download.

    .venv/bin/python bench/stamping.py [--n 200] [--naive-n 40] [--http] [--clients 1,2,4]

Builds the app on a temporary SQLite database (migrated with webapp.migrate.upgrade, demo data
from webapp.demo.data.load_demo, CSRF on as in production), adds fresh tickets sold an hour
ago (copies of the demo tickets' lines: the demo's own may be past the invoicing window), walks
the flow up to the ticket step once per branch, then measures, after a warm-up, at each
number of clients (C threads at once, each request timed on its own):

  (a) the ticket-validation fragment: POST /facturar/demo/ticket/campo/total with HX-Request,
      a whole valid ticket form, as htmx sends it when the customer leaves the field;
  (b) "Generar factura": the ticket step's POST for a fresh ticket each time (reserve, build,
      sign, XSD, sandbox PAC, email queued with its PDF left for the mail worker); the PDF is
      not made here;
  (c) the naive satcfdi path, in-process, no web layer: satcfdi's Comprobante built from the
      same ticket lines, signed (the CSD loaded once), serialised with satcfdi's own
      validate=True (the schema compiled on each call), stamped by the same sandbox PAC, and
      its PDF rendered (xhtml2pdf, webapp.cfdi.pdf) in the same go;
  (d) a bare Flask route (one route returning a short string), measured the same way.

Then, sequentially, the PDF of invoices stamped in (b): the first download (renders it and
keeps it) and a second one (the kept bytes); satcfdi's own PDF (satcfdi.render, WeasyPrint)
for reference; and the breakdown of one stamping, webapp.cfdi's functions timed directly.

Each web request's server CPU is measured too: time.thread_time() of the thread that ran it,
from a WSGI wrapper (a response header carries it back), so it does not count the time a
thread waits for the GIL or a core while other clients run. The product's budget (PRODUCT.md:
stamping p95 ≤ 100 ms) is judged on both wall time and server CPU; nothing is asserted.

The Flask test client is the default transport; --http serves the apps with werkzeug on
loopback (HTTP/1.1 keep-alive) and measures with http.client (the server runs in this
process, so it shares the GIL with the clients).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import multiprocessing
import os
import platform
import re
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
from webapp.migrate import upgrade  # noqa: E402
from webapp.models import Branch, Issuer, Ticket, TicketLine, TicketStatus  # noqa: E402

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
SESSION = "session"
INVOICE = re.compile(r"/facturar/factura/([A-Za-z0-9_-]{10,})")
CPU_HEADER = "X-Bench-Cpu-Ms"
WARMUP = {"validation": 30, "stamping": 8, "naive": 3, "bare": 50, "pdf": 3}
BREAKDOWN_RUNS = 20


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


# --- Server CPU per request --------------------------------------------------------------------


class CpuMeter:
    """WSGI wrapper: the CPU time of the thread that ran the request, in a response header.

    Flask has run the view and built the response when it calls start_response, so the
    header covers all of it but the body's iteration (a list: nothing left to compute)."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.thread_time()

        def measured(status, headers, exc_info=None):
            cpu = (time.thread_time() - started) * 1000
            return start_response(status, [*headers, (CPU_HEADER, f"{cpu:.3f}")], exc_info)

        return self.wsgi_app(environ, measured)


def metered(app: Flask) -> Flask:
    app.wsgi_app = CpuMeter(app.wsgi_app)  # type: ignore[method-assign]
    return app


# --- Transports: the same requests through the test client or a loopback server -------------


@dataclass
class Answer:
    status: int
    location: str
    cookie: str | None  # the session cookie set by the answer, if any
    body: bytes
    cpu_ms: float | None


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
            headers["Cookie"] = f"{SESSION}={cookie}"
        r = client.open(path, method=method, data=data, headers=headers)
        cpu = r.headers.get(CPU_HEADER)
        return Answer(
            r.status_code,
            r.headers.get("Location", ""),
            _session(r.headers.getlist("Set-Cookie")),
            r.get_data(),
            float(cpu) if cpu else None,
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
            headers["Cookie"] = f"{SESSION}={cookie}"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        cpu = response.getheader(CPU_HEADER)
        return Answer(
            response.status,
            response.getheader("Location") or "",
            _session(response.msg.get_all("Set-Cookie") or []),
            payload,
            float(cpu) if cpu else None,
        )

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()


class GunicornTransport(HttpTransport):
    """The app served by gunicorn, as in production: `workers` processes forked from this one
    (gthread workers, one thread each, keep-alive), measured with http.client from here."""

    def __init__(self, app: Flask, workers: int) -> None:
        from gunicorn.app.base import BaseApplication

        self.name = f"gunicorn, {workers} worker processes, on loopback; http.client (keep-alive)"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        settings = {
            "bind": f"127.0.0.1:{self.port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": 1,
            "keepalive": 30,
            "loglevel": "warning",
            "preload_app": True,
        }

        class Served(BaseApplication):
            def load_config(self) -> None:
                for key, value in settings.items():
                    self.cfg.set(key, value)

            def load(self):
                return app

        if "db" in app.extensions:  # no connection of this process crosses the fork
            app.extensions["db"].engine.dispose()

        def serve() -> None:
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the access log, as production writes it
            Served().run()

        self.process = multiprocessing.get_context("fork").Process(target=serve, daemon=True)
        self.process.start()
        self._local = threading.local()
        deadline = time.monotonic() + 60
        while True:  # until every worker answers... at least one does: the port is open
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or not self.process.is_alive():
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.05)

    def close(self) -> None:
        self.process.terminate()  # SIGTERM: gunicorn's graceful stop
        self.process.join(30)


def _session(set_cookies: Iterable[str]) -> str | None:
    for header in set_cookies:
        if header.startswith(f"{SESSION}="):
            return header.split(";", 1)[0].removeprefix(f"{SESSION}=")
    return None


# --- Measuring -------------------------------------------------------------------------------

Call = Callable[[], float | None]
"""One measured operation; returns its CPU ms (the server's, or its own thread's), if known."""


def timed(call: Call) -> tuple[float, float | None]:
    start = time.perf_counter()
    cpu = call()
    return time.perf_counter() - start, cpu


def run(calls: list[Call], clients: int) -> Figure:
    """Wall time and CPU of each of `calls` with `clients` of them at once."""
    start = time.perf_counter()
    if clients <= 1:
        results = [timed(c) for c in calls]
    else:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(timed, calls))
    wall = time.perf_counter() - start
    return Figure([t for t, _ in results], [c for _, c in results if c is not None], wall, clients)


@dataclass
class Figure:
    times: list[float]  # seconds
    cpus: list[float] = field(default_factory=list)  # ms
    wall: float = 0.0
    clients: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95) * 1000

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpus) if self.cpus else None

    @property
    def cpu_p95(self) -> float | None:
        return percentile(self.cpus, 0.95) if self.cpus else None

    @property
    def rate(self) -> float:
        return len(self.times) / self.wall if self.wall else 0.0


# --- The app, its data and the flow ------------------------------------------------------------


@dataclass
class Flow:
    """A customer at the ticket step of one branch: session cookie and CSRF token."""

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
            # One loopback address sends every request: the per-address limits (60 ticket
            # requests a minute) would refuse the bench, not measure it.
            "RATELIMIT_ENABLED": False,
        }
    )
    app.logger.disabled = True
    with app.app_context():
        load_demo(db.session, crypto.cipher_from_config(app.config))
    return metered(app)


def fresh_tickets(app: Flask, count: int) -> list[dict]:
    """`count` new open tickets sold an hour ago, spread over the branches, each with the lines
    of a demo ticket (1 to 6 products, IVA 16 %, 0 % or exempt), as the form types them."""
    sold = datetime.now(UTC) - timedelta(hours=1)
    with app.app_context():
        branches = db.session.scalars(select(Branch).order_by(Branch.id)).all()
        models = db.session.scalars(
            select(Ticket).where(Ticket.status == TicketStatus.OPEN).order_by(Ticket.id).limit(200)
        ).all()
        made = []
        for index in range(count):
            model, branch = models[index % len(models)], branches[index % len(branches)]
            number = f"9{index:07d}"
            ticket = Ticket(
                branch_id=branch.id,
                order_number=f"7{index:05d}",
                ticket_number=number,
                sold_at=sold,
                total=model.total,
                lines=[
                    TicketLine(
                        position=line.position,
                        description=line.description,
                        clave_prod_serv=line.clave_prod_serv,
                        clave_unidad=line.clave_unidad,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        objeto_imp=line.objeto_imp,
                        tax_factor=line.tax_factor,
                        tax_rate=line.tax_rate,
                    )
                    for line in model.lines
                ],
            )
            db.session.add(ticket)
            made.append(ticket)
        db.session.commit()
        return [
            {
                "id": t.id,
                "branch_id": t.branch_id,
                "order_number": t.order_number,
                "ticket_number": t.ticket_number,
                "total": f"{t.total:.2f}",
            }
            for t in made
        ]


def start_flow(transport, branch_id: int) -> Flow:
    """Branch and RFC steps, as a browser does them, up to the ticket form (whether a step
    answers with a redirect or with the next page)."""
    page = transport.request("GET", "/facturar/demo/")
    csrf = CSRF.search(page.body.decode()).group(1)
    cookie = page.cookie
    for path, data in (
        ("/facturar/demo/", {"branch": branch_id}),
        ("/facturar/demo/rfc", {"rfc": RFC}),
    ):
        r = transport.request("POST", path, {**data, "csrf_token": csrf}, cookie=cookie)
        assert r.status in (200, 303), (path, r.status, r.body[:500])
        cookie = r.cookie or cookie
    r = transport.request("GET", "/facturar/demo/ticket", cookie=cookie)
    assert r.status == 200 and b'name="ticket_number"' in r.body, (r.status, r.body[:500])
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


def validation_call(transport, flow: Flow, ticket: dict) -> Call:
    data = form(ticket, flow)

    def call() -> float | None:
        r = transport.request(
            "POST",
            "/facturar/demo/ticket/campo/total",
            data,
            headers={"HX-Request": "true", "HX-Target": "campo-total"},
            cookie=flow.cookie,
        )
        if r.status != 200 or b"field-error" in r.body:
            raise RuntimeError(f"validation answered {r.status}: {r.body[:300]!r}")
        return r.cpu_ms

    return call


@dataclass(frozen=True)
class Stamped:
    """An invoice made by a stamping call, and the cookie of the browser that owns it."""

    public_id: str
    cookie: str


def stamping_call(transport, flow: Flow, ticket: dict, made: list[Stamped]) -> Call:
    data = form(ticket, flow)

    def call() -> float | None:
        r = transport.request("POST", "/facturar/demo/ticket", data, cookie=flow.cookie)
        found = INVOICE.search(r.location if r.status == 303 else r.body.decode())
        if r.status not in (200, 303) or found is None:
            errors = re.findall(r'class="field-error"[^>]*>([^<]+)', r.body.decode())
            raise RuntimeError(f"stamping answered {r.status}: {errors or r.body[:300]!r}")
        made.append(Stamped(found.group(1), r.cookie or flow.cookie))
        return r.cpu_ms

    return call


def download_call(transport, invoice: Stamped) -> Call:
    def call() -> float | None:
        r = transport.request(
            "GET", f"/facturar/factura/{invoice.public_id}.pdf", cookie=invoice.cookie
        )
        if r.status != 200 or not r.body.startswith(b"%PDF"):
            raise RuntimeError(f"PDF download answered {r.status}: {r.body[:300]!r}")
        return r.cpu_ms

    return call


def bare_app() -> Flask:
    app = Flask("bare")
    app.add_url_rule("/bare", "bare", lambda: "ok")
    return metered(app)


def bare_call(transport) -> Call:
    def call() -> float | None:
        r = transport.request("GET", "/bare")
        if r.status != 200:
            raise RuntimeError(f"bare route answered {r.status}")
        return r.cpu_ms

    return call


# --- The naive satcfdi path: everything in-process, in one go ----------------------------------


@dataclass
class Naive:
    """What the naive path needs, loaded once: the demo issuer's CSD and PAC, a ticket's lines."""

    issuer: Issuer
    branch: Branch
    lines: list
    signer: object
    pac: object
    folio: int = 800_000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_folio(self) -> int:
        with self.lock:
            self.folio += 1
            return self.folio


def naive_setup(app: Flask, ticket: dict) -> Naive:
    with app.app_context():
        service = app.extensions["stamping"]
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        branch = db.session.get(Branch, ticket["branch_id"])
        lines = list(db.session.get(Ticket, ticket["id"]).lines)
        signer, pac = service.signer_for(issuer), service.pac_for(issuer)
        db.session.expunge_all()  # read outside the app context, by several threads
        return Naive(issuer, branch, lines, signer, pac)


def naive_comprobante(naive: Naive):
    """satcfdi's Comprobante for the ticket's lines, as satcfdi's documentation builds one."""
    from satcfdi.create.cfd import cfdi40

    from webapp.cfdi.builder import cfdi_fecha

    conceptos = []
    for line in naive.lines:
        taxed = line.objeto_imp == "02"
        conceptos.append(
            cfdi40.Concepto(
                clave_prod_serv=line.clave_prod_serv,
                cantidad=line.quantity,
                clave_unidad=line.clave_unidad,
                descripcion=line.description,
                valor_unitario=line.unit_price,
                objeto_imp=line.objeto_imp,
                impuestos=cfdi40.Impuestos(
                    traslados=cfdi40.Traslado(
                        impuesto="002",
                        tipo_factor=line.tax_factor,
                        tasa_o_cuota=line.tax_rate,
                    )
                )
                if taxed
                else None,
            )
        )
    return cfdi40.Comprobante(
        emisor=cfdi40.Emisor(
            rfc=naive.issuer.rfc,
            nombre=naive.issuer.legal_name,
            regimen_fiscal=naive.issuer.regimen_fiscal,
        ),
        lugar_expedicion=naive.branch.cp,
        receptor=cfdi40.Receptor(
            rfc=RFC,
            nombre=RECEPTOR["nombre"],
            domicilio_fiscal_receptor=RECEPTOR["cp"],
            regimen_fiscal_receptor=RECEPTOR["regimen"],
            uso_cfdi=RECEPTOR["uso_cfdi"],
        ),
        conceptos=conceptos,
        serie="NAIVE",
        folio=str(naive.next_folio()),
        forma_pago=RECEPTOR["forma_pago"],
        metodo_pago="PUE",
        fecha=cfdi_fecha(datetime.now(UTC), naive.branch.cp),
    )


def naive_call(naive: Naive) -> Call:
    """Build, sign, satcfdi's validate=True, sandbox stamp and PDF: one invoice, in-process."""
    from webapp.cfdi.pdf import render_pdf

    def call() -> float | None:
        started = time.thread_time()
        comprobante = naive_comprobante(naive)
        comprobante.sign(naive.signer)
        xml = comprobante.xml_bytes(validate=True)
        stamped = naive.pac.stamp(xml)
        render_pdf(stamped.xml, branch_name=naive.branch.name, sandbox=True)
        return (time.thread_time() - started) * 1000

    return call


def satcfdi_pdf(naive: Naive, runs: int) -> list[float]:
    """Seconds of satcfdi's own PDF (satcfdi.render.pdf_bytes, WeasyPrint) of one invoice."""
    from satcfdi import render
    from satcfdi.cfdi import CFDI

    comprobante = naive_comprobante(naive)
    comprobante.sign(naive.signer)
    cfdi = CFDI.from_string(naive.pac.stamp(comprobante.xml_bytes()).xml)
    render.pdf_bytes(cfdi)  # warm-up: fonts, templates
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        render.pdf_bytes(cfdi)
        times.append(time.perf_counter() - started)
    return times


# --- Breakdown: webapp.cfdi's functions directly ---------------------------------------------


def breakdown(app: Flask, sample: dict) -> dict[str, float]:
    """Median ms of each step of stamping one ticket's invoice, outside the web layer."""
    # From the modules: once webapp.cfdi.builder is imported, `from webapp.cfdi import build`
    # gives the submodule, not the function.
    from webapp.cfdi.builder import build, sign
    from webapp.cfdi.draft import Draft
    from webapp.cfdi.pdf import render_pdf
    from webapp.cfdi.xsd import validate
    from webapp.issuing.issue import ticket_lines

    steps: dict[str, list[float]] = {
        "build": [],
        "sign": [],
        "build+sign": [],
        "XSD validate": [],
        "PAC stamp": [],
        "PDF render": [],
    }
    with app.app_context():
        service = app.extensions["stamping"]
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        branch = db.session.get(Branch, sample["branch_id"])
        lines = tuple(ticket_lines(db.session.get(Ticket, sample["id"])))
        signer, pac = service.signer_for(issuer), service.pac_for(issuer)
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


# --- Printing ----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return f"{value:9.1f}" if value is not None else f"{'–':>9}"


def _verdict(value: float | None, budget: float | None) -> str:
    if budget is None or value is None:
        return ""
    return "PASS" if value <= budget else "OVER"


def print_table(title: str, rows: list[Figure], bare: dict[int, Figure], budget: float | None):
    print(title)
    print(
        f"  {'clients':>7}{'p50 ms':>9}{'p95 ms':>9}{'cpu p50':>9}{'cpu p95':>9}"
        f"{'req/s':>8}{'× bare p95':>12}"
        + (f"   p95 ≤ {budget:.0f} ms (wall / cpu)" if budget else "")
    )
    for figure in rows:
        reference = bare.get(figure.clients)
        ratio = f"{figure.p95 / reference.p95:12.1f}" if reference else f"{'':>12}"
        verdict = (
            f"   {_verdict(figure.p95, budget)} / {_verdict(figure.cpu_p95, budget)}"
            if budget
            else ""
        )
        print(
            f"  {figure.clients:>7}{_ms(figure.median)}{_ms(figure.p95)}"
            f"{_ms(figure.cpu_median)}{_ms(figure.cpu_p95)}{figure.rate:8.0f}{ratio}{verdict}"
        )


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="web requests measured per figure")
    parser.add_argument("--naive-n", type=int, default=40, help="naive invoices per figure")
    parser.add_argument("--pdf-n", type=int, default=50, help="first PDF downloads measured")
    parser.add_argument(
        "--satcfdi-pdf-runs", type=int, default=5, help="satcfdi's own PDF (0: skip it)"
    )
    parser.add_argument("--http", action="store_true", help="a real server on loopback")
    parser.add_argument(
        "--gunicorn",
        type=int,
        metavar="W",
        default=0,
        help="serve with gunicorn, W worker processes (as production does), instead",
    )
    parser.add_argument(
        "--clients",
        "--concurrency",
        default="1,2,4",
        help="numbers of clients at once, comma-separated (default 1,2,4)",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    if args.gunicorn:
        transport_class = functools.partial(GunicornTransport, workers=args.gunicorn)
    else:
        transport_class = HttpTransport if args.http else TestClientTransport

    begun = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autofactura-bench-") as directory:
        app = build_app(Path(directory))
        per_level = WARMUP["stamping"] + args.n
        tickets = fresh_tickets(app, 1 + per_level * len(levels))
        setup = time.perf_counter() - begun

        transport = transport_class(app)
        bare_transport = transport_class(bare_app())
        figures: dict[str, list[Figure]] = {"validation": [], "stamping": [], "naive": []}
        bare: dict[int, Figure] = {}
        made: list[Stamped] = []
        # The access log is written as in production, to /dev/null instead of the terminal.
        quiet = contextlib.redirect_stderr(open(os.devnull, "w"))  # noqa: SIM115
        try:
            quiet.__enter__()
            flows = {b: start_flow(transport, b) for b in sorted({t["branch_id"] for t in tickets})}
            probe, queue = tickets[0], tickets[1:]
            naive = naive_setup(app, probe)
            check = validation_call(transport, flows[probe["branch_id"]], probe)
            plain = bare_call(bare_transport)
            run([check] * WARMUP["validation"], 1)
            run([plain] * WARMUP["bare"], 1)
            run([naive_call(naive)] * WARMUP["naive"], 1)
            for level in levels:
                # (a) inline validation of a valid ticket, the same one each time (read only)
                figures["validation"].append(run([check] * args.n, level))
                # (b) "Generar factura", a fresh ticket each time
                batch, queue = queue[:per_level], queue[per_level:]
                calls = [stamping_call(transport, flows[t["branch_id"]], t, made) for t in batch]
                run(calls[: WARMUP["stamping"]], 1)
                figures["stamping"].append(run(calls[WARMUP["stamping"] :], level))
                # (c) the naive satcfdi path
                figures["naive"].append(run([naive_call(naive)] * args.naive_n, level))
                # (d) the bare route, the same way
                bare[level] = run([plain] * args.n, level)

            # The PDF: first downloads (render + keep), then the kept one, sequentially.
            owned = made[: WARMUP["pdf"] + args.pdf_n]
            run([download_call(transport, s) for s in owned[: WARMUP["pdf"]]], 1)
            first = run([download_call(transport, s) for s in owned[WARMUP["pdf"] :]], 1)
            again = run([download_call(transport, s) for s in owned[WARMUP["pdf"] :]], 1)
        finally:
            quiet.__exit__(None, None, None)
            transport.close()
            bare_transport.close()

        weasy = satcfdi_pdf(naive, args.satcfdi_pdf_runs) if args.satcfdi_pdf_runs else []
        steps = breakdown(app, probe)
        app.extensions["db"].engine.dispose()

    print(
        f"Autofactura stamping bench — Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, SQLite (temporary file)"
    )
    print(
        f"transport: {transport.name}; clients {', '.join(map(str, levels))} (threads of "
        f"this process); n = {args.n} web requests and {args.naive_n} naive invoices per "
        f"figure, after warm-up; setup (migrate + demo + {len(tickets)} fresh tickets) "
        f"{setup:.1f} s"
    )
    print(
        "p50/p95: wall time of each request as its client saw it; cpu: the server thread's CPU "
        "for it (time.thread_time; the naive path: its own thread's)"
    )
    print()
    print_table(
        '(b) "Generar factura": POST /facturar/demo/ticket (reserve, build, sign, XSD, sandbox '
        "PAC, email queued; PDF left for later)",
        figures["stamping"],
        bare,
        BUDGETS_MS["stamping"],
    )
    print_table(
        "(c) naive satcfdi path, in-process: Comprobante + sign + xml_bytes(validate=True) + "
        "sandbox stamp + PDF (xhtml2pdf)",
        figures["naive"],
        bare,
        BUDGETS_MS["stamping"],
    )
    print_table(
        "(a) validation fragment: POST /facturar/demo/ticket/campo/total (htmx)",
        figures["validation"],
        bare,
        BUDGETS_MS["validation"],
    )
    print_table("(d) bare Flask route: GET /bare", [bare[level] for level in levels], bare, None)
    print()
    print(f"The PDF, after the stamp: GET /facturar/factura/<id>.pdf ({len(first.times)} invoices)")
    print(f"  {'':<44}{'p50 ms':>9}{'p95 ms':>9}{'cpu p50':>9}{'cpu p95':>9}")
    for label, figure in (
        ("first download (renders it and keeps it)", first),
        ("second download (the kept PDF)", again),
    ):
        print(
            f"  {label:<44}{_ms(figure.median)}{_ms(figure.p95)}"
            f"{_ms(figure.cpu_median)}{_ms(figure.cpu_p95)}"
        )
    if weasy:
        print(
            f"  {'satcfdi.render.pdf_bytes (WeasyPrint), ref.':<44}"
            f"{_ms(statistics.median(weasy) * 1000)}{_ms(percentile(weasy, 0.95) * 1000)}"
            f"   ({len(weasy)} runs)"
        )
    print()
    print(f"One stamping, webapp.cfdi's functions directly (median of {BREAKDOWN_RUNS}, ms):")
    for name in ("build+sign", "XSD validate", "PAC stamp", "PDF render"):
        detail = (
            f"   (build {steps['build']:.2f} + sign {steps['sign']:.2f})"
            if name == "build+sign"
            else "   (after the stamp: first download or mail worker)"
            if name == "PDF render"
            else ""
        )
        print(f"  {name:<26}{steps[name]:10.2f}{detail}")
    direct = sum(steps[n] for n in ("build+sign", "XSD validate", "PAC stamp"))
    sequential = figures["stamping"][0]
    print(f"  {'sum without the PDF':<26}{direct:10.2f}")
    print(
        f"  web + database share of the sequential request (median): "
        f"{sequential.median - direct:.2f} ms "
        f"({(sequential.median - direct) / sequential.median:.0%})"
    )
    print(f"\ntotal run {time.perf_counter() - begun:.1f} s")


if __name__ == "__main__":
    main()
