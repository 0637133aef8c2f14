"""Fixtures: `app`, `client`, `make_app`; the database is SQLite, or PostgreSQL when
TEST_DATABASE_URL is set (make test runs the suite both ways). Also the demo merchant, its
staff, customers and their invoices, loopback servers (SMTP, a PAC), and a real Chromium.
The plain helpers the tests share are in tests/flows.py."""

from __future__ import annotations

import copy
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from sqlalchemy import Integer, Table, inspect, make_url, select, text
from werkzeug.serving import make_server

from tests.flows import (
    OTHER_RFC,
    PASSWORD,
    PATIENCE,
    RECEPTOR,
    RFC,
    Doc,
    Mailbox,
    Replay,
    free_port,
    sign_in,
    stamp,
    verified_account,
)
from webapp import crypto
from webapp.app import create_app
from webapp.cfdi import build, samples, sign
from webapp.cfdi.pac import sandbox
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.db import make_engine
from webapp.demo.data import MEXICO_CITY, load_demo
from webapp.demo.invoices import load_invoices
from webapp.demo.staff import STAFF_PASSWORD, ensure_demo_staff
from webapp.extensions import db
from webapp.mail import worker as mail_worker
from webapp.mail.cli import app_sessions
from webapp.migrate import upgrade
from webapp.models import Account, Branch, Issuer, StaffRole, Ticket, TicketStatus, metadata
from webapp.security import passwords
from webapp.sms import cli as sms_cli
from webapp.sms import worker as sms_worker

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def _database_free(item) -> bool:
    """A test whose outcome does not depend on the database: marked `run_once` (audits of
    markup and of the network, say), or using no database at all (no `database_url` fixture,
    directly or through `app`, `client`...) and not one of PostgreSQL's own."""
    if item.get_closest_marker("run_once") is not None:
        return True
    fixtures = getattr(item, "fixturenames", ())
    return "database_url" not in fixtures and item.get_closest_marker("postgres_only") is None


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL, leave out the tests whose outcome does not depend on the database
    (_database_free): they ran the same on SQLite."""
    if not POSTGRES_URL:
        return
    kept = [item for item in items if not _database_free(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_report_header(config):
    backend = "PostgreSQL (TEST_DATABASE_URL)" if POSTGRES_URL else "SQLite"
    return f"autofactura database backend: {backend}"


# Argon2id with small parameters (the production ones take a tenth of a second or more per
# hash, on purpose): the same algorithm and checks, thousands of hashes in seconds.
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
CHEAP_DUMMY_HASH = CHEAP_ARGON2.hash("autofactura: no such account")


@pytest.fixture(autouse=True)
def _cheap_argon2(request, monkeypatch):
    """Every test hashes passwords with CHEAP_ARGON2, but those marked `argon2_production`."""
    if request.node.get_closest_marker("argon2_production") is None:
        monkeypatch.setattr(passwords, "_hasher", CHEAP_ARGON2)
        monkeypatch.setattr(passwords, "_DUMMY_HASH", CHEAP_DUMMY_HASH)


def _worker_database(url: str, worker: str) -> str:
    """A database of its own for a pytest-xdist worker, on the same PostgreSQL server."""
    name = f"{make_url(url).database}_{worker}"
    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory) -> str:
    """A database migrated to the newest revision, once per test session (per worker when
    pytest-xdist runs the suite in parallel: `make test` does)."""
    if POSTGRES_URL:
        worker = getattr(request.config, "workerinput", {}).get("workerid")
        url = _worker_database(POSTGRES_URL, worker) if worker else POSTGRES_URL
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sandbox_pac_dir(tmp_path_factory):
    """One sandbox PAC installation (its certificate made once) for the whole test session."""
    directory = tmp_path_factory.mktemp("sandbox-pac")
    SandboxPac(directory).signer()
    return str(directory)


@pytest.fixture
def test_sandbox_pac_dir(sandbox_pac_dir, tmp_path) -> str:
    """The session's sandbox certificate in a directory of this test's own: what one test
    stamped is unknown to the next (the demo data, copied, may make the very same XML)."""
    directory = tmp_path / "sandbox-pac"
    directory.mkdir()
    for name in (sandbox.CERT_FILE, sandbox.KEY_FILE):
        shutil.copy2(Path(sandbox_pac_dir) / name, directory / name)
    return str(directory)


@pytest.fixture
def make_app(database_url, tmp_path, test_sandbox_pac_dir):
    """Build apps on the test database; rows are wiped after the test."""
    apps = []

    def factory(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "DATABASE_URL": database_url,
            "MAIL_URL": f"file://{tmp_path / 'mail'}",
            "SMS_URL": f"file://{tmp_path / 'sms'}",
            "BASE_URL": "http://localhost",
            "WTF_CSRF_ENABLED": False,
            "PAC_SANDBOX_DIR": test_sandbox_pac_dir,
            "SRI_SANDBOX_DIR": str(tmp_path / "sandbox-sri"),
            "PROOFS_DIR": str(tmp_path / "proofs"),
            "RATELIMIT_ENABLED": False,  # tests/test_ratelimit.py turns it on
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    for app in apps:
        app.extensions["db"].engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def _demo_templates(tmp_path_factory) -> _DemoTemplates:
    return _DemoTemplates(tmp_path_factory.mktemp("demo-templates"))


@pytest.fixture
def demo(app, _demo_templates):
    """The demo merchant loaded; the newest open tickets of CENTRO and its oldest one."""
    with app.app_context():
        return _demo_templates.load(app)


def _pick_demo_tickets(session) -> dict:
    tickets = session.scalars(
        select(Ticket).where(Ticket.status == TicketStatus.OPEN).order_by(Ticket.sold_at.desc())
    ).all()
    fresh = [t for t in tickets if t.branch.code == "CENTRO"][:3]
    old = [t for t in tickets if t.branch.code == "CENTRO"][-1]

    def pick(t):
        return {
            "id": t.id,
            "order": t.order_number,
            "number": t.ticket_number,
            "total": t.total,
            "branch_id": t.branch_id,
            "sold_at": t.sold_at,
        }

    return {"fresh": [pick(t) for t in fresh], "old": pick(old)}


@dataclass(frozen=True)
class _Template:
    name: str  # a schema (PostgreSQL) or a database file (SQLite) holding copies of the rows
    tables: tuple[str, ...]  # the tables load_demo filled, parents first
    picked: dict  # what the `demo` fixture answers


class _DemoTemplates:
    """The demo merchant of a worker, loaded once and copied back into the tables per test.

    `load_demo` makes a CSD and 2,000 tickets (seconds); copying its rows back takes a few
    milliseconds. A test gets the copy only when it finds every table empty, as load_demo
    would have (otherwise load_demo runs), so it sees the rows load_demo would have made. A
    template holds for one database, one key sealing the CSD (DATA_KEY or SECRET_KEY) and one
    day in Mexico City (ticket dates are relative to the load: "today", "this month").
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.templates: dict[tuple, _Template] = {}

    def load(self, app) -> dict:
        engine = db.engine
        key = (
            engine.url.render_as_string(hide_password=False),
            app.config.get("DATA_KEY"),
            app.config.get("SECRET_KEY"),
            datetime.now(MEXICO_CITY).date(),
        )
        with engine.connect() as conn:
            tables = _tables_of(conn)
            empty = _all_empty(conn, tables)
        template = self.templates.get(key)
        if template and empty:
            _restore(engine, template, tables)
            return copy.deepcopy(template.picked)
        load_demo(db.session, crypto.cipher_from_config(app.config))
        picked = _pick_demo_tickets(db.session)
        if template is None and empty:
            self.templates[key] = self._save(engine, tables, picked)
        return picked

    def _save(self, engine, tables: list[Table], picked: dict) -> _Template:
        with engine.connect() as conn:
            filled = tuple(t.name for t in tables if not _all_empty(conn, [t]))
        name = f"demo_template_{len(self.templates)}"
        if engine.dialect.name == "sqlite":
            name = str(self.directory / f"{name}.db")
            source, target = sqlite3.connect(engine.url.database), sqlite3.connect(name)
            with closing(source), closing(target):
                source.backup(target)
        else:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{name}"'))
                for table in filled:
                    rows = f'CREATE TABLE "{name}"."{table}" AS SELECT * FROM "{table}"'  # noqa: S608
                    conn.execute(text(rows))
        return _Template(name, filled, copy.deepcopy(picked))


def _tables_of(conn) -> list[Table]:
    """The models' tables in this database, parents first."""
    present = set(inspect(conn).get_table_names())
    return [t for t in metadata.sorted_tables if t.name in present]


def _all_empty(conn, tables: list[Table]) -> bool:
    if not tables:
        return True
    rows = " UNION ALL ".join(
        f'SELECT 1 FROM (SELECT 1 FROM "{t.name}" LIMIT 1) AS x'  # noqa: S608 (our tables)
        for t in tables
    )
    count = f"SELECT count(*) FROM ({rows}) AS y"  # noqa: S608
    return conn.execute(text(count)).scalar() == 0


def _restore(engine, template: _Template, tables: list[Table]) -> None:
    """Copy the template's rows into the (empty) tables of the test database."""
    if engine.dialect.name == "sqlite":
        with closing(sqlite3.connect(engine.url.database, isolation_level=None, timeout=30)) as c:
            c.execute("ATTACH DATABASE ? AS demo_template", (template.name,))
            c.execute("BEGIN IMMEDIATE")
            for table in template.tables:
                rows = f'INSERT INTO main."{table}" SELECT * FROM demo_template."{table}"'  # noqa: S608
                c.execute(rows)
            c.execute("COMMIT")
            c.execute("DETACH DATABASE demo_template")
        return
    by_name = {t.name: t for t in tables}
    with engine.begin() as conn:
        for table in template.tables:
            copy_rows = f'INSERT INTO "{table}" SELECT * FROM "{template.name}"."{table}"'  # noqa: S608
            conn.execute(text(copy_rows))
            key = list(by_name[table].primary_key.columns)
            if len(key) == 1 and isinstance(key[0].type, Integer):  # next ids follow the copies
                sequence, column = "pg_get_serial_sequence(:t, :c)", key[0].name
                last = f'SELECT setval({sequence}, max("{column}")) FROM "{table}"'  # noqa: S608
                conn.execute(text(last), {"t": f'"{table}"', "c": column})


# --- Back office: staff of the demo issuer and of another issuer --------------------------


@pytest.fixture
def staff(app, demo):
    """Emails of staff, every password STAFF_PASSWORD: `operator`, `admin` and `branch`
    (CENTRO) of the demo issuer, `other_admin` of a second issuer ("otro", EKU9003173C9, one
    branch NORTE); `other_issuer_id` and `other_branch_id` to try crossing issuers."""
    from webapp.admin.staff import create_staff

    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        operator, admin, branch = ensure_demo_staff(db.session, issuer)
        other = Issuer(
            slug="otro",
            rfc="EKU9003173C9",
            legal_name="ESCUELA KEMPER URGATE",
            regimen_fiscal="601",
            cp="42501",
            serie="K",
        )
        other.branches = [Branch(code="NORTE", name="Norte", cp="42501", address="")]
        db.session.add(other)
        db.session.flush()
        other_admin = create_staff(
            db.session,
            "admin.kemper@example.com",
            StaffRole.ISSUER_ADMIN,
            other,
            password=STAFF_PASSWORD,
        )
        db.session.commit()
        return {
            "operator": operator.email,
            "admin": admin.email,
            "branch": branch.email,
            "other_admin": other_admin.email,
            "issuer_id": issuer.id,
            "other_issuer_id": other.id,
            "other_branch_id": other.branches[0].id,
        }


@pytest.fixture
def admin_login():
    """admin_login(client, email): sign `client` in to the back office (asserts it worked)."""

    def sign_in(client, email: str, password: str = STAFF_PASSWORD):
        response = client.post("/admin/entrar", data={"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return response

    return sign_in


# --- Customers of the portal: accounts and the invoices they stamped ------------------------


@pytest.fixture
def people(app, demo):
    """Ingrid (RFC, email ingrid@…) and Pedro (another RFC), both verified, both with the
    password PASSWORD; their account ids."""
    with app.app_context():
        return {
            "ingrid": verified_account(RFC, RECEPTOR["email"]),
            "pedro": verified_account(OTHER_RFC, "pedro@example.com"),
        }


@pytest.fixture
def stamped(app, client, demo, people):
    """Ingrid, signed in on `client`, invoiced the three fresh tickets; their public ids."""
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    return [stamp(client, t) for t in demo["fresh"]]


@pytest.fixture
def history(app, people):
    """80 history invoices for Ingrid over three years (no files), plus nothing for Pedro."""
    with app.app_context():
        account = db.session.get(Account, people["ingrid"])
        load_invoices(db.session, account, 80, datetime.now(UTC), seed=7)
    return people


# --- Servers on loopback: SMTP, and a PAC's web service replaying scripted answers ----------

# aiosmtpd gives a controller 5 s to start its thread and answer; a loaded machine needs more.
# The variable wins over the `ready_timeout` argument, so every SMTP server of the suite gets it.
os.environ.setdefault("AIOSMTPD_CONTROLLER_TIMEOUT", str(PATIENCE))


@pytest.fixture
def smtp_server():
    """Start SMTP servers on loopback: smtp_server(delay=..., port=..., **SMTP options)."""
    controllers: list[Controller] = []

    def start(delay: float = 0.0, port: int | None = None, **smtp_options) -> Mailbox:
        mailbox = Mailbox(delay)
        controller = Controller(
            mailbox, hostname="127.0.0.1", port=port or free_port(), **smtp_options
        )
        controller.start()
        controllers.append(controller)
        mailbox.url = f"smtp://127.0.0.1:{controller.port}"
        return mailbox

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def server() -> Iterator[Replay]:
    """A loopback HTTP server answering as its `answer` says (tests/flows.py: Replay)."""
    replay = Replay()
    thread = threading.Thread(target=replay.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield replay
    replay.release.set()
    replay.shutdown()
    replay.server_close()


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> tuple[Doc, Doc]:
    """Two signed CFDIs and their stamps (by the sandbox authority, as real TFDs)."""
    stamper = SandboxPac(tmp_path_factory.mktemp("stamper"))
    made = []
    for folio in (41, 42):
        xml = sign(build(samples.draft(3, folio=folio)), samples.signer())
        made.append(Doc(xml, stamper.stamp(xml)))
    return made[0], made[1]


@pytest.fixture
def doc(docs) -> Doc:
    return docs[0]


# --- Real browser: Debian's Chromium driven by Playwright --------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_browser_results = {"passed": 0, "failed": 0, "version": None}


@pytest.fixture
def live_server(app):
    """The app served over HTTP on a free loopback port, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # shutdown() waits for the loop to look (every 0.5 s by default): half a second per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


# Playwright waits on a condition (an element, a URL, a text) up to a timeout: 5 s for
# expect(), 30 s for actions and navigations. On a loaded machine Chromium and the live server
# share two cores with a dozen other processes, so every wait gets a generous bound; a passing
# test waits no longer for it, as each wait ends when its condition holds.
EXPECT_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 60_000


class _PatientBrowser:
    """The session's Chromium, whose every new context waits ACTION_TIMEOUT_MS for actions and
    navigations (tests open contexts of their own: without JavaScript, without CSP…)."""

    def __init__(self, chromium):
        self._chromium = chromium

    def __getattr__(self, name):
        return getattr(self._chromium, name)

    def new_context(self, **options):
        context = self._chromium.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
        return context


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=ACTION_TIMEOUT_MS
        )
        _browser_results["version"] = chromium.version
        yield _PatientBrowser(chromium)
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context; console errors and page errors are collected on `page.errors`."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


@pytest.fixture
def workers(app):
    """The mail and SMS workers in threads, delivering to the file transports the /dev
    inboxes read."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=mail_worker.work, args=(app_sessions(app), app.config, 0.1, stop), daemon=True
        ),
        threading.Thread(
            target=sms_worker.work,
            args=(sms_cli.app_sessions(app), app.config, 0.1, stop),
            daemon=True,
        ),
    ]
    for thread in threads:
        thread.start()
    yield
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


@pytest.fixture(params=[True, False], ids=["htmx", "no-js"])
def tab(browser, request):
    """A fresh Chromium tab, with JavaScript (htmx) or without it (plain forms); console and
    page errors are collected on `tab.errors`."""
    context = browser.new_context(java_script_enabled=request.param)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and "browser" in item.keywords and _browser_results["version"]:
        report.user_properties.append(("chromium", _browser_results["version"]))


def pytest_runtest_logreport(report):
    """Count browser tests here: with pytest-xdist, the reports of every worker come here."""
    if report.when == "call" and "browser" in report.keywords:
        _browser_results["passed" if report.passed else "failed"] += 1
        for name, value in report.user_properties:
            if name == "chromium":
                _browser_results["version"] = value


def pytest_terminal_summary(terminalreporter):
    backend = "PostgreSQL" if POSTGRES_URL else "SQLite"
    terminalreporter.write_line(f"autofactura: suite ran on {backend}")
    if _browser_results["version"]:
        terminalreporter.write_line(
            f"autofactura: Chromium {_browser_results['version']} (Playwright, headless): "
            f"{_browser_results['passed']} browser tests passed, "
            f"{_browser_results['failed']} failed"
        )


@pytest.fixture(scope="session")
def _telecom_csd():
    """The telecom provider's test CSD, made once (an RSA key takes a visible moment)."""
    from webapp.demo.services import new_csd

    return new_csd(datetime.now(UTC))


@pytest.fixture
def telecom(app, _telecom_csd):
    """The demo telecom provider (a services issuer) with a few accounts and lines; no bills.
    Answers {"slug", "issuer_id", "accounts", "lines"}."""
    from webapp.demo.services import load_services_demo

    with app.app_context():
        loaded = load_services_demo(
            db.session,
            crypto.cipher_from_config(app.config),
            accounts=12,
            lines=18,
            csd=_telecom_csd,
        )
        return {
            "slug": loaded.issuer.slug,
            "issuer_id": loaded.issuer.id,
            "accounts": loaded.accounts,
            "lines": loaded.lines,
        }


@pytest.fixture
def telecom_admin(app, telecom):
    """The email of an issuer admin of the demo telecom provider (password STAFF_PASSWORD)."""
    from webapp.admin.staff import create_staff

    with app.app_context():
        member = create_staff(
            db.session,
            "admin.proveedor@example.com",
            StaffRole.ISSUER_ADMIN,
            db.session.get(Issuer, telecom["issuer_id"]),
            password=STAFF_PASSWORD,
        )
        db.session.commit()
        return member.email


# --- Ecuador (SRI) ------------------------------------------------------------------------------

EC_RUC = "1792060346001"
EC_CEDULA = "1710000009"
EC_P12_PASSWORD = "clave-de-prueba"


@pytest.fixture(scope="session")
def ec_p12() -> bytes:
    """A test .p12 (test authority) for EC_RUC, made once per session (RSA key generation)."""
    from webapp.sri.testp12 import make_test_p12

    return make_test_p12(EC_RUC, "COMERCIAL ANDES PRUEBA S.A.", EC_P12_PASSWORD)


def _ec_ticket(branch: Branch, number: str, sold_at: datetime) -> Ticket:
    from decimal import Decimal

    from webapp.models import TicketLine

    def line(position, description, quantity, price, rate):
        return TicketLine(
            position=position,
            description=description,
            clave_prod_serv="01010101",
            clave_unidad="H87",
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            tax_factor="Tasa",
            tax_rate=Decimal(rate),
        )

    return Ticket(
        branch=branch,
        order_number=f"7{number}",
        ticket_number=number,
        sold_at=sold_at,
        # 2 × 3.50 at 15 % (7.00 + 1.05) and 1 × 2.25 at 0 %
        total=Decimal("10.30"),
        currency="USD",
        lines=[
            line(1, "Café de Loja 250 g", "2", "3.50", "0.150000"),
            line(2, "Pan de yuca", "1", "2.25", "0.000000"),
        ],
    )


@pytest.fixture
def ec_shop(app, ec_shop_in) -> dict:
    """An Ecuadorian shop (country EC): its RUC and .p12, one branch (estab 001, punto 001) and
    five open tickets of US$10.30 sold an hour ago."""
    return ec_shop_in(app)


@pytest.fixture
def ec_shop_in(ec_p12):
    """ec_shop in the database of an app of the test's own (make_app)."""
    return lambda app: _load_ec_shop(app, ec_p12)


def _load_ec_shop(app, ec_p12) -> dict:
    from datetime import timedelta

    from webapp.sri.keystore import store_p12

    with app.app_context():
        issuer = Issuer(
            slug="andes",
            kind="retail",
            country="EC",
            rfc=EC_RUC,
            legal_name="COMERCIAL ANDES PRUEBA S.A.",
            trade_name="Andes Market",
            head_office_address="Av. Amazonas N24-03 y Colón, Quito",
            keeps_accounts=True,
            regimen_fiscal="",
            cp="",
            formas_pago="01,16,19,20",
        )
        branch = Branch(
            issuer=issuer,
            code="QUITO",
            name="Quito Norte",
            cp="",
            address="Av. 10 de Agosto N35-12, Quito",
            estab="001",
            pto_emi="001",
        )
        db.session.add_all([issuer, branch])
        store_p12(issuer, ec_p12, EC_P12_PASSWORD, crypto.cipher_from_config(app.config))
        sold = datetime.now(UTC) - timedelta(hours=1)
        tickets = [_ec_ticket(branch, f"{900000 + n}", sold) for n in range(1, 6)]
        db.session.add_all(tickets)
        db.session.commit()
        return {
            "slug": issuer.slug,
            "issuer_id": issuer.id,
            "branch_id": branch.id,
            "ruc": EC_RUC,
            "cedula": EC_CEDULA,
            "tickets": [
                {"id": t.id, "order": t.order_number, "number": t.ticket_number, "total": t.total}
                for t in tickets
            ],
        }
