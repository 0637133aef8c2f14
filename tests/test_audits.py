"""The fast audits of issue #6: axe-core (WCAG 2.0/2.1/2.2 A and AA) in Chromium and the Nu
Html Checker on every kind of page. The tools come from npm (audit/package.json; `make test`
installs them); Lighthouse is slower and runs in `make audit` (scripts/audit.sh)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.flows import PASSWORD, RECEPTOR, RFC, start, ticket_data, verified_account
from tests.flows import sign_in as client_sign_in
from webapp.billing import terms
from webapp.demo.services import load_history, mobile_number
from webapp.demo.staff import STAFF_PASSWORD as PASSWORD_STAFF
from webapp.extensions import db
from webapp.models import (
    Account,
    LineHolder,
    ServiceBill,
    ServiceLine,
    utcnow,
)
from webapp.wiring import stamping

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "audit/node_modules/axe-core/axe.min.js"
VNU = ROOT / "audit/node_modules/vnu-jar/build/dist/vnu.jar"
# htmx's own attributes (hx-get, hx-target…) are the app's hypermedia vocabulary; HTML knows
# them not, and the checker says so for each. htmx reads data-hx-* as well, but app.js and
# the tests read hx-* (hx-headers on <body>): renaming them is its own change.
HTMX_ATTRIBUTES = "Attribute “hx-[a-z-]+” not allowed on element .*"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

# The markup is the same on both databases: audited once, on SQLite.
pytestmark = pytest.mark.run_once

needs_tools = pytest.mark.skipif(
    not AXE.exists() or not VNU.exists(),
    reason="audit tools missing: run `npm ci --prefix audit` (make test does)",
)


def _cookies(client) -> dict[str, str]:
    """The test client's cookies, to hand to the browser."""
    return {c.key: c.value for c in client._cookies.values()}


@pytest.fixture
def audited(app, client, demo, staff, telecom, telecom_admin):
    """Every kind of page: name -> (path, expected status, HTML, cookies of that moment)."""
    pages = {}

    def take(name, who, path, status=200):
        r = who.get(path)
        assert r.status_code == status, (name, r.status_code)
        pages[name] = (path, status, r.get_data(as_text=True), _cookies(who))

    guest = app.test_client()
    take("home", guest, "/")
    take("error 404", guest, "/no-existe", status=404)
    take("sign in", guest, "/cuenta/entrar")
    take("register", guest, "/cuenta/registro")
    take("recover", guest, "/cuenta/recuperar")
    take("flow: branch", guest, "/facturar/demo/")
    key = start(guest, demo["fresh"][0]["branch_id"])
    take("flow: ticket", guest, "/facturar/demo/ticket")
    r = guest.post("/facturar/demo/ticket", data=ticket_data(demo["fresh"][0], key))
    assert r.status_code == 303, r.get_data(as_text=True)
    take("invoice result", guest, r.headers["Location"])
    other = app.test_client()
    other.post("/facturar/demo/", data={"branch": str(demo["fresh"][0]["branch_id"])})
    take("flow: rfc", other, "/facturar/demo/rfc")

    with app.app_context():
        verified_account(RFC, RECEPTOR["email"])  # Ingrid, who invoices two more tickets signed in
    assert client_sign_in(client, RFC, PASSWORD).status_code == 303
    for t in demo["fresh"][1:]:
        key = start(client, t["branch_id"])
        assert client.post("/facturar/demo/ticket", data=ticket_data(t, key)).status_code == 303
    take("Mi cuenta", client, "/cuenta/")
    take("change password", client, "/cuenta/contrasena")
    take("fiscal profile", client, "/cuenta/perfil/")
    take("invoice panel", client, "/facturas/")

    # The back office, as the demo issuer's admin (the invoices above are in its lists).
    admin = app.test_client()
    take("admin: sign in", admin, "/admin/entrar")
    response = admin.post(
        "/admin/entrar", data={"email": staff["admin"], "password": PASSWORD_STAFF}
    )
    assert response.status_code == 303
    for name, path in [
        ("admin: dashboard", "/admin/"),
        ("admin: invoices", "/admin/facturas"),
        ("admin: factura global", "/admin/factura-global"),
        ("admin: tickets", "/admin/tickets"),
        ("admin: branches", "/admin/sucursales"),
        ("admin: new branch", "/admin/sucursales/nueva"),
        ("admin: API keys", "/admin/api"),
        ("admin: staff", "/admin/personal"),
        ("admin: issuer settings", "/admin/emisor"),
        ("admin: CSD upload", "/admin/emisor/csd"),
    ]:
        take(name, admin, path)
    detail = re.search(r'href="(/admin/facturas/[\w-]+)"', pages["admin: invoices"][2]).group(1)
    take("admin: invoice detail", admin, detail)
    branch = re.search(r'href="(/admin/sucursales/\d+)"', pages["admin: branches"][2]).group(1)
    take("admin: branch detail", admin, branch)

    # Monthly service bills: the provider's pages for a guest and for Ingrid, who holds the
    # line of an account with a month billed; its back office as its admin.
    with app.app_context():
        load_history(db.session, stamping(), datetime.now(UTC), months=1)
        account = db.session.scalar(select(Account).where(Account.email == RECEPTOR["email"]))
        line = db.session.scalar(select(ServiceLine).where(ServiceLine.number == mobile_number(0)))
        db.session.add(LineHolder(account_id=account.id, line_id=line.id))
        terms.accept(db.session, account.id, terms.current(db.session, line.issuer_id), utcnow())
        bill = db.session.scalar(
            select(ServiceBill).where(ServiceBill.service_account_id == line.service_account_id)
        )
        bill_id, line_id, period = bill.public_id, line.id, bill.period
        db.session.commit()
    services = "/servicios/telcel-demo"
    take("services: landing", guest, f"{services}/")
    take("services: register", guest, f"{services}/registro")
    take("services: terms", guest, f"{services}/terminos/texto")
    take("services: Mis servicios", client, f"{services}/mis-servicios")
    take("services: add a line", client, f"{services}/lineas/agregar?tipo=MOVIL")
    take("services: a line", client, f"{services}/lineas/{line_id}")
    take("services: Facturación", client, f"{services}/facturacion")
    take("services: a bill", client, f"{services}/facturacion/{bill_id}")
    take("services: Estado de cuenta", client, f"{services}/estado-de-cuenta")
    provider = app.test_client()
    response = provider.post(
        "/admin/entrar", data={"email": telecom_admin, "password": PASSWORD_STAFF}
    )
    assert response.status_code == 303
    take("admin: service accounts", provider, "/admin/servicios/cuentas")
    take("admin: a service account", provider, "/admin/servicios/cuentas/100000")
    take("admin: service data upload", provider, "/admin/servicios/cargar")
    take("admin: billing runs", provider, "/admin/servicios/facturacion")
    take("admin: a billing run", provider, f"/admin/servicios/facturacion/{period}")
    return pages


@pytest.mark.browser
@needs_tools
def test_axe_finds_no_violations(browser, live_server, audited):
    axe = AXE.read_text()
    # The CSP forbids injected scripts; the audit context bypasses it (the app's own
    # scripts run as always).
    context = browser.new_context(locale="es-MX", bypass_csp=True)
    page = context.new_page()
    found = {}

    def check(name):
        page.add_script_tag(content=axe)
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG
        )
        assert result["passes"], name  # axe did check the page
        if result["violations"]:
            found[f"{name} ({page.url.removeprefix(live_server)})"] = result["violations"]

    try:
        for name, (path, status, _html, cookies) in audited.items():
            context.clear_cookies()
            if cookies:
                context.add_cookies(
                    [{"name": k, "value": v, "url": live_server} for k, v in cookies.items()]
                )
            response = page.goto(live_server + path)
            assert response.status == status and page.url == live_server + path, name
            page.wait_for_load_state("networkidle")
            check(name)
        # Signed in as the customer again: a modal dialog over Mi cuenta, as htmx brings it.
        context.clear_cookies()
        context.add_cookies(
            [
                {"name": k, "value": v, "url": live_server}
                for k, v in audited["Mi cuenta"][3].items()
            ]
        )
        page.goto(live_server + "/cuenta/")
        page.get_by_role("link", name="Datos fiscales", exact=True).click()
        expect(page.get_by_role("dialog", name="Datos fiscales")).to_be_visible()
        expect(page.locator("#modal.htmx-settling")).to_have_count(0)
        check("Datos fiscales dialog")
    finally:
        context.close()
    report = []
    for name, violations in found.items():
        for v in violations:
            report.append(f"{name}: [{v['impact']}] {v['id']}: {v['help']}")
            for node in v["nodes"][:5]:
                report.append(f"    {' '.join(node['target'])}: {node['failureSummary']}")
    assert not found, "axe-core violations:\n" + "\n".join(report)


@needs_tools
@pytest.mark.skipif(shutil.which("java") is None, reason="the Nu Html Checker needs java")
def test_nu_html_checker_finds_no_errors(audited, tmp_path):
    files = {}
    for i, (name, (_path, _status, html, _cookies)) in enumerate(audited.items()):
        file = tmp_path / f"page{i}.html"
        file.write_text(html)
        files[str(file)] = name
    command = ["java", "-jar", str(VNU), "--format", "json", "--stdout"]
    run = subprocess.run(  # one JVM for every page
        [*command, "--filterpattern", HTMX_ATTRIBUTES, *sorted(files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    messages = json.loads(run.stdout)["messages"]
    assert messages or run.returncode == 0, run.stderr
    errors, warnings = [], []
    for m in messages:
        url = m.get("url", "").removeprefix("file:")
        line = f"{files.get(url, url)}:{m.get('lastLine', '?')}: {m['message']}"
        if m["type"] != "info":  # "error", "non-document-error"
            errors.append(line)
        elif m.get("subType") == "warning":
            warnings.append(line)
    print(f"Nu Html Checker: {len(files)} pages, {len(errors)} errors, {len(warnings)} warnings")
    for line in warnings:
        print("    warning:", line)
    assert not errors, "Nu Html Checker errors:\n" + "\n".join(errors)
