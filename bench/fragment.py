"""The ticket-validation fragment beside /healthz, both served by gunicorn in the same run.

    .venv/bin/python bench/fragment.py [--n 400] [--clients 1,4] [--workers 2] [--threads 4]
                                       [--redis]

Migrates a temporary SQLite database, loads the demo merchant (webapp.demo.data.load_demo) and
serves the app as production does: `gunicorn -c gunicorn.conf.py wsgi:app` on a free loopback
port (WEB_CONCURRENCY processes × WEB_THREADS threads, gthread, keep-alive), everything set by
environment, CSRF and the rate limiter on (the ticket limits raised so that the run itself is
not refused), captcha on, access lines logged to a file; the rate limits in each process's
memory, or with --redis in a redis-server of the run's own (REDIS_URL, as in production). One
customer walks the flow to the ticket page, then, for each number of clients at once (threads,
each with its own HTTP/1.1 keep-alive connection) it measures, after a warm-up, in
alternating chunks so that both see the same machine:

  fragment   POST /facturar/demo/ticket/campo/total with HX-Request: a whole valid ticket form,
             as htmx sends it when the customer leaves the "Total" field;
  /healthz   GET /healthz (one `SELECT 1`).

Prints p50 and p95 latency in ms, requests per second, the CPU time of the gunicorn workers
per request (utime + stime from /proc, so the server's work alone, not the clients'), and the
fragment's figures as a ratio of /healthz's: speed = /healthz p95 ÷ fragment p95 (the issue's
"≥ 0.4×"), and the same for throughput and CPU. Then the SQL statements one fragment makes,
counted in this process through the Flask test client. Verdicts are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import logging
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))  # run as a script from any directory

SLUG = "demo"
RFC = "XOJI740919U48"
RECEPTOR = {
    "nombre": "INGRID XODAR JIMENEZ",
    "cp": "76028",
    "regimen": "612",
    "uso_cfdi": "G03",
    "email": "ingrid@example.com",
    "forma_pago": "01",
}
FRAGMENT = f"/facturar/{SLUG}/ticket/campo/total"
BUDGET_P95_MS = 20.0  # PRODUCT.md, "Performance budgets": the fragment's p95 under load
RATIO_GOAL = 0.4  # issue #14: the fragment at ≥ 0.4× /healthz (p95)
CHUNK = 50  # requests per chunk; the two endpoints alternate chunk by chunk
WARMUP = 60
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The server ------------------------------------------------------------------------------


def environment(directory: Path, port: int, workers: int, threads: int) -> dict[str, str]:
    """The environment gunicorn and this process build the app from: nothing else is read."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")
    }
    return {
        **keep,
        "DATABASE_URL": f"sqlite:///{directory / 'bench.db'}",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATA_KEY": secrets.token_urlsafe(32),
        "MAIL_URL": f"file://{directory / 'mail'}",
        "PAC": "sandbox",
        "PAC_SANDBOX_DIR": str(directory / "sandbox-pac"),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
        # The run makes thousands of ticket checks from one address in a minute: raised, not
        # turned off, so that the limiter's work is measured as in production.
        "RATELIMIT_TICKET_IP": "1000000/minute",
        "RATELIMIT_TICKET_BRANCH": "1000000/minute",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # No recycling in the middle of a run (production: max_requests 2000 with jitter).
        "GUNICORN_CMD_ARGS": "--max-requests 0",
    }


def prepare(env: dict[str, str]):
    """Migrate and load the demo merchant; the app (in this process) and a valid ticket."""
    os.environ.update(env)
    from sqlalchemy import select

    from webapp import crypto
    from webapp.app import create_app
    from webapp.demo.data import load_demo
    from webapp.extensions import db
    from webapp.issuing.lookup import check_ticket
    from webapp.migrate import upgrade
    from webapp.models import Branch, Ticket, TicketStatus

    upgrade(env["DATABASE_URL"])
    app = create_app({"TESTING": False})
    app.logger.disabled = True
    with app.app_context():
        load_demo(db.session, crypto.cipher_from_config(app.config))
        now = datetime.now(UTC)
        for branch in db.session.scalars(select(Branch).order_by(Branch.id)):
            for t in db.session.scalars(
                select(Ticket)
                .where(Ticket.branch_id == branch.id, Ticket.status == TicketStatus.OPEN)
                .order_by(Ticket.sold_at.desc())
                .limit(50)
            ):
                check = check_ticket(
                    db.session,
                    branch,
                    ticket_number=t.ticket_number,
                    order_number=t.order_number,
                    total=t.total,
                    now=now,
                )
                if check.ok:
                    ticket = {
                        "branch_id": branch.id,
                        "order_number": t.order_number,
                        "ticket_number": t.ticket_number,
                        "total": f"{t.total:.2f}",
                    }
                    return app, ticket
    sys.exit("no invoiceable demo ticket")


@dataclass
class Gunicorn:
    process: subprocess.Popen
    port: int
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path) -> Gunicorn:
        out = open(log, "ab")  # noqa: SIM115 - closed by stop
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stop() ends the workers with it
        )
        out.close()
        return cls(process, int(env["PORT"]), log)

    def workers(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def wait_ready(self, workers: int, seconds: float = 120) -> None:
        """Until /healthz answers and every worker is up (each loads the app on its own)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited ({self.process.returncode}); see {self.log}")
            if len(self.workers()) >= workers:
                with contextlib.suppress(OSError):
                    client = Client(self.port)
                    if client.request("GET", "/healthz").status == 200:
                        client.close()
                        return
            time.sleep(0.2)
        sys.exit(f"gunicorn not ready after {seconds:.0f} s; see {self.log}")

    def cpu_seconds(self) -> float:
        """utime + stime of the workers, now."""
        total = 0
        for pid in self.workers():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return total / CLOCK_TICKS

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Redis:
    """A redis-server of this run's own, on a free loopback port, nothing saved."""

    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, directory: Path) -> Redis:
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("--redis needs redis-server on the PATH")
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _pong(port):
                return cls(process, port)
            time.sleep(0.1)
        process.kill()
        sys.exit("redis-server did not answer")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- Clients -----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    location: str
    cookie: str | None
    body: bytes


class Client:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, data=None, headers=None, cookie=None) -> Answer:
        headers = dict(headers or {})
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if cookie:
            headers["Cookie"] = f"session={cookie}"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        cookie = None
        for header in response.msg.get_all("Set-Cookie") or []:
            if header.startswith("session="):
                cookie = header.split(";", 1)[0].removeprefix("session=")
        return Answer(response.status, response.getheader("Location") or "", cookie, payload)

    def close(self) -> None:
        self.connection.close()


@dataclass
class Customer:
    """Past the branch and RFC steps: the session cookie and the form's fields."""

    cookie: str
    form: dict
    rewrites: int = 0  # fragments that set the session cookie again


def walk_to_ticket(port: int, ticket: dict) -> Customer:
    """Home of the flow, branch, RFC, then the ticket page, as a browser does them (a step
    may answer the next page itself or a 303 to it: either way the ticket page is asked for
    last, and it may add to the session what the inline checks then read)."""
    client = Client(port)
    page = client.request("GET", f"/facturar/{SLUG}/")
    if page.status != 200:
        sys.exit(f"/facturar/{SLUG}/ answered {page.status}")
    csrf = CSRF.search(page.body.decode()).group(1)
    cookie = page.cookie
    for path, data in (
        (f"/facturar/{SLUG}/", {"branch": ticket["branch_id"]}),
        (f"/facturar/{SLUG}/rfc", {"rfc": RFC}),
    ):
        r = client.request("POST", path, {**data, "csrf_token": csrf}, cookie=cookie)
        if r.status not in (200, 303):
            sys.exit(f"POST {path} answered {r.status}: {r.body[:300]!r}")
        cookie = r.cookie or cookie
    r = client.request("GET", f"/facturar/{SLUG}/ticket", cookie=cookie)
    if r.status != 200 or b'name="ticket_number"' not in r.body:
        sys.exit(f"the ticket step answered {r.status}: {r.body[:300]!r}")
    cookie = r.cookie or cookie
    client.close()
    form = {
        "order_number": ticket["order_number"],
        "ticket_number": ticket["ticket_number"],
        "total": ticket["total"],
        "key": secrets.token_urlsafe(24),
        "csrf_token": csrf,
        **RECEPTOR,
    }
    return Customer(cookie, form)


def fragment_call(customer: Customer):
    def call(client: Client) -> None:
        r = client.request(
            "POST",
            FRAGMENT,
            customer.form,
            headers={"HX-Request": "true", "HX-Target": "campo-total"},
            cookie=customer.cookie,
        )
        if r.status != 200 or b"field-error" in r.body or b'id="campo-total"' not in r.body:
            raise RuntimeError(f"the fragment answered {r.status}: {r.body[:300]!r}")
        if r.cookie is not None:
            customer.rewrites += 1  # it should not write the session: nothing changed

    return call


def healthz_call(client: Client) -> None:
    r = client.request("GET", "/healthz")
    if r.status != 200:
        raise RuntimeError(f"/healthz answered {r.status}")


# --- Measuring ---------------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    times: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95) * 1000

    @property
    def rate(self) -> float:
        return len(self.times) / self.wall

    @property
    def cpu_ms(self) -> float:
        return self.cpu / len(self.times) * 1000


def chunk(server: Gunicorn, clients: list[Client], call, count: int, figure: Figure | None):
    """`count` requests spread over the clients, all at once; recorded into `figure`."""
    per = [count // len(clients) + (i < count % len(clients)) for i in range(len(clients))]

    def work(i: int) -> list[float]:
        times = []
        for _ in range(per[i]):
            start = time.perf_counter()
            call(clients[i])
            times.append(time.perf_counter() - start)
        return times

    cpu, begun = server.cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        results = list(pool.map(work, range(len(clients))))
    wall, cpu = time.perf_counter() - begun, server.cpu_seconds() - cpu
    if figure is not None:
        figure.wall += wall
        figure.cpu += cpu
        for times in results:
            figure.times.extend(times)


def measure(server: Gunicorn, customer: Customer, clients: int, n: int) -> tuple[Figure, Figure]:
    connections = [Client(server.port) for _ in range(clients)]
    fragment, healthz = fragment_call(customer), healthz_call
    try:
        chunk(server, connections, fragment, WARMUP, None)
        chunk(server, connections, healthz, WARMUP, None)
        figures = Figure("fragment"), Figure("/healthz")
        done = 0
        while done < n:
            size = min(CHUNK, n - done)
            chunk(server, connections, fragment, size, figures[0])
            chunk(server, connections, healthz, size, figures[1])
            done += size
        return figures
    finally:
        for c in connections:
            c.close()


def count_queries(app, customer: Customer) -> list[str]:
    """The SQL statements of one fragment, through the test client in this process."""
    from sqlalchemy import event

    from webapp.extensions import db

    statements: list[str] = []

    def listen(conn, cursor, statement, *args) -> None:
        statements.append(" ".join(statement.split()))

    logging.getLogger("webapp.access").setLevel(logging.WARNING)  # this process's lines
    client = app.test_client()
    client.set_cookie("session", customer.cookie)
    post = lambda: client.post(  # noqa: E731
        FRAGMENT, data=customer.form, headers={"HX-Request": "true", "HX-Target": "campo-total"}
    )
    post()  # the first request of a process warms its caches
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        answer = post()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    if answer.status_code != 200:
        sys.exit(f"the fragment answered {answer.status_code} in this process")
    return statements


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=400, help="requests measured per figure")
    parser.add_argument("--clients", default="1,4", help="clients at once, comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="WEB_THREADS (default 4)")
    parser.add_argument(
        "--redis", action="store_true", help="rate limits in a throw-away redis-server"
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    begun = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="autofactura-fragment-") as name:
        directory = Path(name)
        env = environment(directory, free_port(), args.workers, args.threads)
        redis = Redis.start(directory) if args.redis else None
        try:
            if redis is not None:
                env["REDIS_URL"] = redis.url
            app, ticket = prepare(env)
            setup = time.perf_counter() - begun
            server = Gunicorn.start(env, directory / "gunicorn.log")
            try:
                server.wait_ready(args.workers)
                customer = walk_to_ticket(server.port, ticket)
                for clients in levels:
                    results.append((clients, *measure(server, customer, clients, args.n)))
            finally:
                server.stop()
            statements = count_queries(app, customer)
            app.extensions["db"].engine.dispose()
        finally:
            if redis is not None:
                redis.stop()

    print(
        f"Autofactura: the ticket-validation fragment beside /healthz — Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"gunicorn -c gunicorn.conf.py wsgi:app: {args.workers} workers × {args.threads} "
        f"threads (gthread), keep-alive, SQLite (temporary file); rate limits "
        f"{'in Redis (REDIS_URL)' if args.redis else 'in each process memory (no REDIS_URL)'}"
    )
    print(
        f"n = {args.n} per figure after {WARMUP} of warm-up, in alternating chunks of {CHUNK}; "
        f"setup {setup:.1f} s"
    )
    print()
    head = f"{'clients':>7}  {'':<10}{'p50 ms':>8}{'p95 ms':>8}{'req/s':>8}{'CPU ms':>8}"
    print(head + "   ratio to /healthz (speed: p95, throughput, CPU)")
    for clients, fragment, healthz in results:
        for figure in (fragment, healthz):
            line = (
                f"{clients:>7}  {figure.label:<10}{figure.p50:8.2f}{figure.p95:8.2f}"
                f"{figure.rate:8.0f}{figure.cpu_ms:8.2f}"
            )
            if figure is fragment:
                speed = healthz.p95 / fragment.p95
                line += (
                    f"   {speed:.2f}× p95, {fragment.rate / healthz.rate:.2f}× req/s, "
                    f"{healthz.cpu_ms / fragment.cpu_ms:.2f}× CPU"
                )
            print(line)
    print()
    for clients, fragment, healthz in results:
        speed = healthz.p95 / fragment.p95
        verdict = "ok" if speed >= RATIO_GOAL else "UNDER"
        budget = "ok" if fragment.p95 <= BUDGET_P95_MS else "OVER"
        print(
            f"{clients} client{'s' if clients > 1 else ''}: fragment at {speed:.2f}× /healthz "
            f"(goal ≥ {RATIO_GOAL}×) {verdict}; fragment p95 {fragment.p95:.1f} ms "
            f"(budget ≤ {BUDGET_P95_MS:.0f} ms) {budget}"
        )
    print()
    if customer.rewrites:
        print(f"{customer.rewrites} fragments set the session cookie again (they should not)")
    print(f"SQL statements of one fragment (/healthz makes 1): {len(statements)}")
    for s in statements:
        print(f"  {s[:150]}{'…' if len(s) > 150 else ''}")
    print(f"\ntotal run {time.perf_counter() - begun:.1f} s")


if __name__ == "__main__":
    main()
