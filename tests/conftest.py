"""Fixtures: `app`, `client`, `make_app`; the database is SQLite, or PostgreSQL when
TEST_DATABASE_URL is set (make test runs the suite both ways)."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import make_url, select, text
from werkzeug.serving import make_server

from webapp import create_app, crypto
from webapp.db import make_engine
from webapp.demo.data import load_demo
from webapp.demo.staff import STAFF_PASSWORD, ensure_demo_staff
from webapp.extensions import db
from webapp.migrate import upgrade
from webapp.models import Branch, Issuer, StaffRole, Ticket, TicketStatus, metadata

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def pytest_report_header(config):
    backend = "PostgreSQL (TEST_DATABASE_URL)" if POSTGRES_URL else "SQLite"
    return f"autofactura database backend: {backend}"


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
    """One sandbox PAC installation for the whole test session."""
    return str(tmp_path_factory.mktemp("sandbox-pac"))


@pytest.fixture
def make_app(database_url, tmp_path, sandbox_pac_dir):
    """Build apps on the test database; rows are wiped after the test."""
    apps = []

    def factory(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "DATABASE_URL": database_url,
            "MAIL_URL": f"file://{tmp_path / 'mail'}",
            "BASE_URL": "http://localhost",
            "WTF_CSRF_ENABLED": False,
            "PAC_SANDBOX_DIR": sandbox_pac_dir,
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


@pytest.fixture
def demo(app):
    """The demo merchant loaded; the newest open tickets of CENTRO and its oldest one."""
    with app.app_context():
        load_demo(db.session, crypto.cipher_from_config(app.config))
        tickets = db.session.scalars(
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        _browser_results["version"] = chromium.version
        yield chromium
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
