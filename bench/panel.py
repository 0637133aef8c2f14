"""The customer panel's filters at scale: server time of GET /facturas/ with each filter.

    .venv/bin/python bench/panel.py [--count 1000000] [--db sqlite|postgresql|both]
                                    [--requests 200] [--keep] [--dir DIR]
    .venv/bin/python bench/panel.py --database-url URL     # an already filled database

For each database: migrate (webapp.migrate.upgrade), the demo merchant (webapp.demo.data.
load_demo), the demo customer and COUNT history invoices for it (webapp.demo.invoices, as
`flask demo invoices --count COUNT` does), then ANALYZE (SQLite) or VACUUM ANALYZE invoice
(PostgreSQL). SQLite is a file in the work directory; PostgreSQL is a throw-away server
(initdb + pg_ctl on a free loopback port, as scripts/with_postgres.py starts one for the
tests), its cluster in the work directory too.

Then, through the real app in this process (the Flask test client, signed in as the demo
customer), each case is requested REQUESTS times after a warm-up, timing client.get with
time.perf_counter: a realistic filter as the panel's form sends it (full page, or the htmx
fragment where said), and a bare Flask route (a separate one-route app) measured the same
way in the same run. Prints median and p95 in ms, the rows the answer lists, and the p95
against the issue's 50 ms; nothing is asserted.

--keep keeps the work directory (the SQLite file and the PostgreSQL cluster, stopped) and
prints it; --dir DIR uses DIR as the work directory, and reuses what a kept run left there
(no loading: migrated to the newest revision, the PostgreSQL cluster started again on a free
port). --database-url measures a filled database as it is (nothing loaded or migrated).
"""

from __future__ import annotations

import argparse
import html
import os
import platform
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any directory
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("SECRET_KEY", "bench-secret-key")  # no instance/secret_key written

from flask import Flask, request  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from with_postgres import free_port, pg_bindir  # noqa: E402

from webapp import crypto  # noqa: E402
from webapp.app import create_app  # noqa: E402
from webapp.demo.cli import analyze  # noqa: E402
from webapp.demo.data import load_demo  # noqa: E402
from webapp.demo.invoices import (  # noqa: E402
    CUSTOMER_EMAIL,
    CUSTOMER_PASSWORD,
    SERIE,
    demo_customer,
    load_invoices,
)
from webapp.extensions import db  # noqa: E402
from webapp.migrate import upgrade  # noqa: E402
from webapp.models import Account, Branch, Invoice, Issuer  # noqa: E402
from webapp.panel import query  # noqa: E402
from webapp.panel.forms import FilterForm  # noqa: E402
from webapp.panel.query import MEXICO_CITY  # noqa: E402

BUDGET_MS = 50.0  # p95 of every filter, the budget
WARMUP = 10  # requests per case before measuring (bare route: 50)
SAMPLES = 20  # distinct real rows the UUID-prefix and serie-folio searches cycle through
DEEP = 20  # "Cargar más" followed this many pages deep
PG_DATABASE = "autofactura_bench"
ROW = re.compile(rb'name="f" type="checkbox"|type="checkbox" name="f"')
MORE = re.compile(r'hx-get="([^"]+)" hx-target="#(mas-\d+)"')


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


# --- The databases -----------------------------------------------------------------------------


@dataclass
class Target:
    kind: str  # sqlite | postgresql
    url: str
    label: str
    reused: bool  # already filled: nothing loaded
    keep_note: str = ""  # how to find it again (with --keep)


@contextmanager
def sqlite_target(work: Path) -> Iterator[Target]:
    path = work / "panel.db"
    reused = path.exists()
    yield Target(
        "sqlite",
        f"sqlite:///{path}",
        f"SQLite {_sqlite_version()} (file {path})",
        reused,
        f"SQLite file: {path}  (URL sqlite:///{path})",
    )


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


@contextmanager
def postgres_target(work: Path) -> Iterator[Target]:
    """A PostgreSQL server on the cluster in work/pg (created unless a kept run left one),
    stopped afterwards. As root, it runs as the `postgres` user (initdb refuses root)."""
    bindir = pg_bindir()
    base = work / "pg"
    data, log = base / "data", base / "server.log"
    as_user: list[str] = []
    reused = (data / "PG_VERSION").exists()
    base.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        # The postgres user goes through the work directory to its cluster (search only).
        os.chmod(work, 0o711)  # noqa: S103 (no read, no write for others)
        os.chown(base, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, stdout=subprocess.DEVNULL)

    port = free_port()
    options = (
        f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off "
        "-c synchronous_commit=off -c max_connections=200"
    )
    if not reused:
        pg(
            f"{bindir}/initdb",
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-instructions",
        )
    pg(f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log), "-w", "-o", options, "start")
    try:
        if not reused:
            pg(
                f"{bindir}/createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                PG_DATABASE,
            )
        version = subprocess.run(
            [f"{bindir}/postgres", "--version"], capture_output=True, text=True
        ).stdout.strip()
        start = " ".join(
            [*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log), "-w"]
            + ["-o", f"'-h 127.0.0.1 -p PORT -k {base}'", "start"]
        )
        yield Target(
            "postgresql",
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/{PG_DATABASE}",
            f"{version} (temporary server at 127.0.0.1:{port}, cluster {data})",
            reused,
            f"PostgreSQL cluster: {data} (stopped). Start it with\n"
            f"      {start}\n"
            f"    then URL postgresql+psycopg://postgres@127.0.0.1:PORT/{PG_DATABASE}"
            f"  (or rerun this bench with --dir {work})",
        )
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


@contextmanager
def given_target(url: str) -> Iterator[Target]:
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    yield Target(kind, url, f"{kind} at {url} (given)", True)


def build_app(url: str, work: Path) -> Flask:
    """The app on `url`; its mail and sandbox PAC directories in `work` (nothing is sent)."""
    app = create_app(
        {
            "SECRET_KEY": os.environ["SECRET_KEY"],
            "DATABASE_URL": url,
            "MAIL_URL": f"file://{work / 'mail'}",
            "BASE_URL": "http://127.0.0.1",
            "PAC": "sandbox",
            "PAC_SANDBOX_DIR": str(work / "sandbox-pac"),
            "DEBUG": False,
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    app.logger.disabled = True
    return app


def fill(app: Flask, target: Target, count: int) -> float:
    """Migrate, demo merchant, demo customer with `count` invoices, ANALYZE; seconds taken."""
    begun = time.perf_counter()
    upgrade(target.url)
    with app.app_context():
        session = db.session
        load_demo(session, crypto.cipher_from_config(app.config))
        now = datetime.now(UTC)
        account = demo_customer(session, now).account
        session.commit()
        step = max(count // 10, 10_000)

        def progress(done: int) -> None:
            if done % step == 0 or done == count:
                elapsed = time.perf_counter() - begun
                print(
                    f"  {target.kind}: {done:,} / {count:,} invoices ({elapsed:.0f} s)", flush=True
                )

        load_invoices(
            session,
            account,
            count,
            now,
            retention_days=app.config.get("RETENTION_DAYS", 90),
            progress=progress,
        )
    loaded = time.perf_counter() - begun
    analyze(app.extensions["db"].engine)  # what `flask demo invoices` ends with
    total = time.perf_counter() - begun
    print(f"  {target.kind}: loaded in {loaded:.1f} s, ANALYZE {total - loaded:.1f} s", flush=True)
    return total


# --- The cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    urls: list[str]  # cycled through
    headers: dict[str, str] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    rows: set[int] = field(default_factory=set)
    queries: list[float] = field(default_factory=list)  # the panel's queries alone

    @property
    def median(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95) * 1000


@dataclass
class Facts:
    """Real values of the demo customer's history, for the filters to ask for."""

    account_id: int
    invoices: int
    table: int
    issuer_id: int
    issuer_slug: str
    branch_id: int
    branch_name: str
    newest: date
    uuids: list[str]
    folios: list[str]


def facts(app: Flask) -> Facts:
    with app.app_context():
        session = db.session
        account = session.scalar(select(Account).where(Account.email == CUSTOMER_EMAIL))
        if account is None:
            sys.exit(f"no demo customer ({CUSTOMER_EMAIL}): run `flask demo invoices` first")
        mine = Invoice.account_id == account.id
        invoices = session.scalar(select(func.count()).where(mine))
        if not invoices:
            sys.exit("the demo customer has no invoices: run `flask demo invoices` first")
        table = session.scalar(select(func.count()).select_from(Invoice))
        issuer = session.scalar(
            select(Issuer).where(Issuer.slug == "farmacias-norte")
        ) or session.get(Issuer, session.scalar(select(func.min(Invoice.issuer_id)).where(mine)))
        # A branch of the demo issuer: one of the smaller shares of the history (about 8%).
        branch = session.scalar(
            select(Branch)
            .join(Issuer, Issuer.id == Branch.issuer_id)
            .where(Issuer.slug == "demo")
            .order_by(Branch.id)
        ) or session.get(Branch, session.scalar(select(func.min(Invoice.branch_id)).where(mine)))
        newest = session.scalar(select(func.max(Invoice.fecha)).where(mine))
        top = session.scalar(select(func.max(Invoice.id)).where(mine))
        low = session.scalar(select(func.min(Invoice.id)).where(mine))
        samples = []
        for i in range(SAMPLES):  # spread over the history, the same ones on every run
            probe = low + (top - low) * (2 * i + 1) // (2 * SAMPLES)
            row = session.execute(
                select(Invoice.uuid, Invoice.serie, Invoice.folio)
                .where(mine, Invoice.id >= probe, Invoice.serie == SERIE)
                .order_by(Invoice.id)
                .limit(1)
            ).first()
            if row:
                samples.append(row)
        return Facts(
            account_id=account.id,
            invoices=invoices,
            table=table,
            issuer_id=issuer.id,
            issuer_slug=issuer.slug,
            branch_id=branch.id,
            branch_name=f"{branch.issuer.legal_name} · {branch.name}",
            newest=_as_utc(newest).astimezone(MEXICO_CITY).date(),
            uuids=[r.uuid[:4] for r in samples],
            folios=[f"{r.serie}-{r.folio}" for r in samples],
        )


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def url(**params) -> str:
    return "/facturas/" + (f"?{urlencode(params)}" if params else "")


def cases(f: Facts) -> list[Case]:
    year_ago = f.newest - timedelta(days=365)
    month = year_ago.replace(day=1)  # a calendar month about a year back
    month_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    htmx = {"HX-Request": "true", "HX-Target": "resultados"}
    return [
        Case("default (newest first)", [url()]),
        Case("sort fecha asc", [url(orden="fecha")]),
        Case("sort total desc", [url(orden="-total")]),
        Case("sort total asc", [url(orden="total")]),
        Case(
            f"date range one month ({month:%Y-%m})",
            [url(desde=month.isoformat(), hasta=month_end.isoformat())],
        ),
        Case(
            "date range one year",
            [
                url(
                    desde=(year_ago - timedelta(days=365)).isoformat(),
                    hasta=year_ago.isoformat(),
                )
            ],
        ),
        Case(f"emisor ({f.issuer_slug})", [url(emisor=f.issuer_id)]),
        Case(f"sucursal ({f.branch_name.split(' · ')[-1].lower()})", [url(sucursal=f.branch_id)]),
        Case("estado vigente", [url(estado="vigente")]),
        Case("estado vigente, oldest first", [url(estado="vigente", orden="fecha")]),
        Case("estado cancelada", [url(estado="cancelada")]),
        Case("estado archivada", [url(estado="archivada")]),
        Case("total 100–1000", [url(total_min="100", total_max="1000")]),
        Case("total 5000–5100", [url(total_min="5000", total_max="5100")]),
        Case(f"q UUID prefix (×{len(f.uuids)})", [url(q=u) for u in f.uuids]),
        Case(f"q serie-folio (×{len(f.folios)})", [url(q=s) for s in f.folios]),
        Case("q issuer name 'farmacias'", [url(q="farmacias")]),
        Case(
            "emisor+vigente+total≥100, -total",
            [url(emisor=f.issuer_id, estado="vigente", total_min="100", orden="-total")],
        ),
        Case("htmx results fragment (default)", [url()], htmx),
        Case("htmx results, estado cancelada", [url(estado="cancelada")], htmx),
    ]


def deep_case(client: FlaskClient) -> Case:
    """The request for page DEEP, reached by following "Cargar más" from the first page."""
    r = client.get(url())
    for _ in range(DEEP - 1):
        found = MORE.search(r.get_data(as_text=True))
        if not found:
            sys.exit("no 'Cargar más' link to follow")
        next_url, target = html.unescape(found.group(1)), found.group(2)
        headers = {"HX-Request": "true", "HX-Target": target}
        r = client.get(next_url, headers=headers)
        _check(r, next_url)
    return Case(f"'Cargar más', page {DEEP}", [next_url], headers)


def _check(response, path: str) -> None:
    if response.status_code != 200:
        body = response.get_data(as_text=True)[:300]
        sys.exit(f"GET {path} answered {response.status_code}: {body!r}")


def measure(client: FlaskClient, case: Case, n: int, warmup: int = WARMUP) -> None:
    urls = case.urls
    for i in range(warmup):
        r = client.get(urls[i % len(urls)], headers=case.headers)
        _check(r, urls[i % len(urls)])
        case.rows.add(len(ROW.findall(r.get_data())))
    for i in range(n):
        path = urls[i % len(urls)]
        start = time.perf_counter()
        r = client.get(path, headers=case.headers)
        case.times.append(time.perf_counter() - start)
        if r.status_code != 200:
            _check(r, path)


def measure_queries(app: Flask, account_id: int, case: Case, n: int) -> None:
    """The queries of the request alone (the filter form's issuers and branches, and the
    page), called as the route calls them, a fresh session each time: the rest of the
    request's time is Flask, the session, the form and the template."""
    for i in range(WARMUP + n):
        path = case.urls[i % len(case.urls)]
        with app.test_request_context(path, headers=case.headers):
            session = db.session
            start = time.perf_counter()
            form = FilterForm(
                query.used_issuers(session, account_id),
                query.used_branches(session, account_id),
                formdata=request.args,
            )
            if not form.validate():
                sys.exit(f"{path}: {form.errors}")
            query.page(session, account_id, form.filters(), form.cursor())
            if i >= WARMUP:
                case.queries.append(time.perf_counter() - start)


def signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    r = client.post(
        "/cuenta/entrar", data={"identifier": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}
    )
    if r.status_code != 303:
        sys.exit(f"signing in answered {r.status_code}: {r.get_data(as_text=True)[:300]!r}")
    r = client.get(url())
    _check(r, url())
    return client


def bare_app() -> Flask:
    app = Flask("bare")
    app.add_url_rule("/bare", "bare", lambda: "ok")
    return app


# --- Main --------------------------------------------------------------------------------------


def run_one(target: Target, args) -> None:
    with tempfile.TemporaryDirectory(prefix="autofactura-panel-app-") as scratch:
        _run_one(target, args, Path(scratch))


def _run_one(target: Target, args, scratch: Path) -> None:
    app = build_app(target.url, scratch)
    if target.reused:
        print(f"== {target.label}: reusing the filled database (nothing loaded) ==", flush=True)
        if target.keep_note:  # a kept run's database: to the newest revision (no-op if there)
            upgrade(target.url)
        setup = None
    else:
        print(f"== {target.label}: loading {args.count:,} invoices ==", flush=True)
        setup = fill(app, target, args.count)
    f = facts(app)
    client = signed_in(app)
    todo = [*cases(f), deep_case(client)]
    for case in todo:
        measure(client, case, args.requests)
        measure_queries(app, f.account_id, case, args.requests)
    bare = Case("bare Flask route", ["/bare"])
    measure(bare_app().test_client(), bare, args.requests, warmup=50)
    app.extensions["db"].engine.dispose()

    print()
    print(f"Panel filters — {target.label}")
    print(
        f"{f.invoices:,} invoices of the demo customer ({f.table:,} in the table); "
        + (f"setup (migrate + load + ANALYZE) {setup:.1f} s; " if setup else "reused; ")
        + f"{args.requests} requests per case after {WARMUP} of warm-up; "
        f"Flask test client, in process"
    )
    print(
        f"{'case':<38}{'median ms':>10}{'p95 ms':>9}{'× bare p95':>11}"
        f"{'queries med/p95':>17}{'rows':>7}  p95 ≤ 50 ms"
    )
    for case in todo:
        rows = "–".join(str(n) for n in sorted({min(case.rows), max(case.rows)}))
        verdict = "PASS" if case.p95 <= BUDGET_MS else "OVER"
        queries = f"{statistics.median(case.queries) * 1000:.2f} / "
        queries += f"{percentile(case.queries, 0.95) * 1000:.2f}"
        print(
            f"{case.label:<38}{case.median:10.2f}{case.p95:9.2f}"
            f"{case.p95 / bare.p95:11.0f}{queries:>17}{rows:>7}  {verdict}"
        )
    print(f"{bare.label:<38}{bare.median:10.3f}{bare.p95:9.3f}{1:11.0f}")
    print(
        "(queries: the filter form's issuers and branches and query.page called alone, "
        "as the route calls them; the rest is Flask, the session, the form, the template)"
    )
    over = [c.label for c in todo if c.p95 > BUDGET_MS]
    print(f"{len(todo) - len(over)} of {len(todo)} cases within 50 ms p95", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000, help="invoices to load")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=200, help="requests measured per case")
    parser.add_argument("--database-url", help="an already filled database: nothing is loaded")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--dir", type=Path, help="work directory (kept; a kept run's databases are reused)"
    )
    args = parser.parse_args()

    print(
        f"Autofactura panel bench — Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    begun = time.perf_counter()
    if args.database_url:
        with given_target(args.database_url) as target:
            run_one(target, args)
        print(f"total run {time.perf_counter() - begun:.1f} s")
        return

    if args.dir:
        work = args.dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="autofactura-panel-bench-"))
    keep = args.keep or args.dir is not None
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    notes = []
    try:
        for kind in kinds:
            opened = sqlite_target(work) if kind == "sqlite" else postgres_target(work)
            with opened as target:
                notes.append(target.keep_note)
                run_one(target, args)
    finally:
        if keep:
            print(f"Kept in {work}:")
            for note in notes:
                print(f"  {note}")
            print(f"  Rerun without loading: .venv/bin/python bench/panel.py --dir {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total run {time.perf_counter() - begun:.1f} s")


if __name__ == "__main__":
    main()
