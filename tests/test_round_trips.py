"""The ticket flow in few round trips (issue #14): home → branch and RFC → ticket → invoice →
PDF, each step one request the customer waits for, with and without JavaScript.

A POST that only stores a choice (branch, RFC) answers with the next step's page, and to htmx
with that step's address (HX-Push-Url), so a reload asks for it with a GET; "Generar factura"
makes an invoice and keeps its 303. The browser tests count the requests; nothing is timed
here (bench/weight.py times the flow under Slow 3G).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

import webapp.main.routes as main_routes
from tests.flows import RFC, enrol_link, fill_ticket, ticket_data

BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}  # a form with hx-boost
MOST_ROUND_TRIPS = 6


def _html(response) -> str:
    return response.get_data(as_text=True)


def _key(html: str) -> str:
    return re.search(r'name="key" type="hidden" value="([^"]+)"', html).group(1)


def _checked_branch(html: str) -> str | None:
    found = re.search(r'<input[^>]*\bchecked\b[^>]*name="branch"[^>]*value="(\d+)"', html)
    return found.group(1) if found else None


def _focused(html: str) -> str:
    """The field marked autofocus ('' when none is)."""
    found = re.findall(r"<(?:input|select)[^>]*\bautofocus\b[^>]*>", html)
    assert len(found) <= 1, found
    return found[0] if found else ""


# --- The home page -----------------------------------------------------------------------


def test_home_links_straight_to_the_only_merchants_branch_step(client, demo):
    home = _html(client.get("/"))
    assert 'href="/facturar/demo/">Facturar un ticket</a>' in home
    assert 'href="/facturar/"' not in home  # no hop through the merchant chooser


def test_home_lists_a_few_merchants_and_a_long_list_stays_on_its_page(
    client, demo, staff, monkeypatch
):
    home = _html(client.get("/"))
    assert 'href="/facturar/demo/">TIENDAS DEMO LA GAVIOTA</a>' in home
    assert 'href="/facturar/otro/">ESCUELA KEMPER URGATE</a>' in home
    monkeypatch.setattr(main_routes, "HOME_ISSUERS", 1)
    home = _html(client.get("/"))
    assert 'href="/facturar/">Facturar un ticket</a>' in home
    assert "ESCUELA KEMPER URGATE" not in home


# --- Steps that store a choice answer with the next step -----------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_branch_and_rfc_in_one_post_answer_with_the_ticket_step(client, demo, htmx):
    branch_id = demo["fresh"][0]["branch_id"]
    page = _html(client.get("/facturar/demo/"))
    assert 'name="branch"' in page and 'name="rfc"' in page  # one page, one form
    r = client.post(
        "/facturar/demo/",
        data={"branch": str(branch_id), "rfc": RFC.lower()},
        headers=BOOSTED if htmx else {},
    )
    assert r.status_code == 200 and "Location" not in r.headers
    assert "Datos del ticket" in _html(r) and RFC in _html(r)
    assert r.headers.get("HX-Push-Url") == ("/facturar/demo/ticket" if htmx else None)
    assert 'id="order_number"' in _focused(_html(r))  # where the customer types next
    assert client.get_cookie("sucursal_demo").value == str(branch_id)
    # The address htmx shows is the ticket step's own: a reload asks for it and gets it.
    again = client.get("/facturar/demo/ticket")
    assert again.status_code == 200 and RFC in _html(again)
    assert _focused(_html(again)) == ""  # a page opened again keeps the browser's focus


def test_posting_the_step_again_keeps_the_tickets_added(client, demo):
    """Without JavaScript the ticket step shows at the branch step's address, and a reload
    posts the branch and RFC again: the same choice, the same state."""
    first, second = demo["fresh"][0], demo["fresh"][1]
    data = {"branch": str(first["branch_id"]), "rfc": RFC}
    key = _key(_html(client.post("/facturar/demo/", data=data)))
    added = client.post("/facturar/demo/ticket", data=ticket_data(first, key, action="add"))
    assert added.status_code == 200 and "Tickets en esta factura" in _html(added)
    again = client.post("/facturar/demo/", data=data)
    assert again.status_code == 200 and f"Ticket {first['number']}" in _html(again)
    # Another RFC is another invoice: its tickets start afresh.
    other = client.post("/facturar/demo/", data={**data, "rfc": "EKU9003173C9"})
    assert f"Ticket {first['number']}" not in _html(other)
    # The ticket form of the answered page works on: its key makes the invoice.
    again = client.post("/facturar/demo/", data=data)
    r = client.post("/facturar/demo/ticket", data=ticket_data(second, _key(_html(again))))
    assert r.status_code == 303 and "/facturar/factura/" in r.headers["Location"]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_step_with_a_problem_stays_and_stores_nothing(client, demo, htmx):
    branch_id = str(demo["fresh"][0]["branch_id"])
    headers = BOOSTED if htmx else {}
    r = client.post("/facturar/demo/", data={"branch": branch_id, "rfc": "ABC"}, headers=headers)
    assert r.status_code == 422 and "12 caracteres" in _html(r)
    assert _checked_branch(_html(r)) == branch_id  # what was chosen stays chosen
    assert r.headers.get("HX-Push-Url") == ("false" if htmx else None)
    r = client.post("/facturar/demo/", data={"branch": "", "rfc": RFC}, headers=headers)
    assert r.status_code == 422 and "Elija la sucursal donde compró." in _html(r)
    ticket = client.get("/facturar/demo/ticket")
    assert ticket.status_code == 303 and ticket.headers["Location"].endswith("/facturar/demo/")


def test_a_remembered_branch_comes_checked_beside_the_rfc(app, client, demo):
    branch_id = str(demo["fresh"][0]["branch_id"])
    client.post("/facturar/demo/", data={"branch": branch_id, "rfc": RFC})
    back = app.test_client()  # another visit: only the branch cookie remains
    back.set_cookie("sucursal_demo", branch_id)
    page = _html(back.get("/facturar/demo/"))
    assert _checked_branch(page) == branch_id and 'name="rfc"' in page


def test_the_branch_alone_answers_with_the_rfc_step(client, demo):
    branch_id = str(demo["fresh"][0]["branch_id"])
    r = client.post("/facturar/demo/", data={"branch": branch_id}, headers=BOOSTED)
    assert r.status_code == 200 and "Capture su RFC" in _html(r)
    assert r.headers["HX-Push-Url"] == "/facturar/demo/rfc"


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_the_rfc_step_answers_with_the_ticket_step(client, demo, htmx):
    """The RFC step alone: "Cambiar RFC", and a kiosk (its branch is fixed)."""
    client.post("/facturar/demo/", data={"branch": str(demo["fresh"][0]["branch_id"])})
    r = client.post("/facturar/demo/rfc", data={"rfc": RFC}, headers=BOOSTED if htmx else {})
    assert r.status_code == 200 and "Datos del ticket" in _html(r)
    assert r.headers.get("HX-Push-Url") == ("/facturar/demo/ticket" if htmx else None)


def test_the_rfc_is_checked_inline_before_a_branch_is_chosen(client, demo):
    inline = client.post(
        "/facturar/demo/rfc",
        data={"rfc": "XOJI740919U40"},
        headers={"HX-Request": "true", "HX-Target": "campo-rfc"},
    )
    assert inline.status_code == 200 and "dígito verificador" in _html(inline)
    assert "<html" not in _html(inline) and 'id="campo-rfc"' in _html(inline)


def test_generating_keeps_its_redirect_and_the_invoice_carries_the_downloads(client, demo):
    t = demo["fresh"][0]
    r = client.post("/facturar/demo/", data={"branch": str(t["branch_id"]), "rfc": RFC})
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, _key(_html(r))))
    assert r.status_code == 303  # a reload of the result does not make another invoice
    invoice = r.headers["Location"]
    page = _html(client.get(invoice))
    assert f'href="{invoice}.pdf"' in page and f'href="{invoice}.xml"' in page


# --- In Chromium: the requests the customer waits for -----------------------------------------


class _Requests:
    """What the live server was asked, as "METHOD /path", the customer's waits only: a page,
    a form's answer (htmx's too), a download. Not the static files (fingerprinted, cached
    after the first page and fetched beside it) nor the inline checks of a field (the
    customer types on while they run). Counted where they arrive, so that a download, which
    Playwright reports as no request of the page, counts as well."""

    def __init__(self, app) -> None:
        self.seen: list[str] = []
        self._wsgi = app.wsgi_app
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        inline = environ.get("HTTP_HX_TARGET", "").startswith("campo-")
        if not path.startswith("/static/") and not inline:
            self.seen.append(f"{environ['REQUEST_METHOD']} {path}")
        return self._wsgi(environ, start_response)


@pytest.mark.browser
@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_the_flow_to_the_pdf_takes_at_most_six_round_trips(
    app, browser, live_server, demo, javascript
):
    requests = _Requests(app)
    context = browser.new_context(  # a fresh context: cold cache, no cookies
        java_script_enabled=javascript, accept_downloads=True, locale="es-MX"
    )
    page = context.new_page()
    ticket = demo["fresh"][0]

    page.goto(live_server + "/")
    page.get_by_role("link", name="Facturar un ticket").click()
    page.get_by_label("Sucursal Centro Histórico").check()
    page.get_by_label("RFC", exact=True).fill(RFC)
    page.get_by_role("button", name="Siguiente").click()
    expect(page.locator("h1")).to_have_text("Datos del ticket")
    # With htmx the address is the ticket step's; without, the page answers the POST there.
    step = "/facturar/demo/ticket" if javascript else "/facturar/demo/"
    assert urlsplit(page.url).path == step
    # The page came in place of the last one: the cursor is where the customer types next.
    expect(page.get_by_label("Número de orden", exact=True)).to_be_focused()
    fill_ticket(page, ticket)
    expect(page.locator(".htmx-request")).to_have_count(0)  # the inline checks answered
    page.get_by_role("button", name="Generar factura").click()
    expect(page.locator("h1")).to_have_text("Su factura está lista")
    assert urlsplit(page.url).path.startswith("/facturar/factura/")  # its own address
    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar PDF").click()
    with open(download.value.path(), "rb") as f:
        assert f.read(4) == b"%PDF"
    context.close()

    trips = requests.seen
    assert len(trips) <= MOST_ROUND_TRIPS, trips
    assert trips[:3] == ["GET /", "GET /facturar/demo/", "POST /facturar/demo/"], trips
    assert trips[-1].endswith(".pdf"), trips
    if javascript:  # Generar factura answers with the invoice itself: no 303 and GET
        assert len(trips) == MOST_ROUND_TRIPS - 1, trips
        assert not any(t.startswith("GET /facturar/factura/") for t in trips[:-1]), trips


@pytest.mark.browser
def test_with_javascript_reload_and_back_ask_with_get(browser, live_server, demo):
    """The ticket step reached by htmx is at its own address: reloading it, or coming back to
    it from the invoice, posts nothing again; the back button goes to the branch step."""
    context = browser.new_context(locale="es-MX")
    page = context.new_page()
    page.goto(live_server + "/facturar/demo/")
    page.get_by_label("Sucursal Centro Histórico").check()
    page.get_by_label("RFC", exact=True).fill(RFC)
    page.get_by_role("button", name="Siguiente").click()
    expect(page.locator("h1")).to_have_text("Datos del ticket")
    methods: list[str] = []
    page.on("request", lambda r: r.resource_type == "document" and methods.append(r.method))
    page.reload()
    expect(page.locator("h1")).to_have_text("Datos del ticket")
    assert methods == ["GET"]
    page.go_back()
    expect(page.locator("h1")).to_have_text("Sucursal y RFC")
    page.go_forward()
    expect(page.locator("h1")).to_have_text("Datos del ticket")
    fill_ticket(page, demo["fresh"][0])
    expect(page.locator(".htmx-request")).to_have_count(0)
    page.get_by_role("button", name="Generar factura").click()
    expect(page.locator("h1")).to_have_text("Su factura está lista")
    methods.clear()
    page.reload()  # the invoice is at its own address: a reload asks for it, makes nothing
    expect(page.locator("h1")).to_have_text("Su factura está lista")
    assert methods == ["GET"], methods
    methods.clear()
    page.go_back()
    expect(page.locator("h1")).to_have_text("Datos del ticket")
    assert "POST" not in methods, methods
    context.close()


@pytest.mark.browser
def test_a_kiosks_idle_warning_still_comes_after_a_step_answered_in_place(
    page, live_server, app, demo
):
    """htmx puts the answer's <main> in place of the page's: the kiosk's idle warning, which
    app.js holds from the page's first load, is still in the document and still comes. On a
    shared screen the step leaves no history entry: back leaves the page."""
    page.clock.install()  # the page's timers run on a clock the test moves too
    page.goto(live_server + enrol_link(app))
    page.get_by_role("button", name="Dar de alta este quiosco").click()
    page.get_by_role("link", name="Comenzar").click()
    page.get_by_label("RFC", exact=True).fill(RFC)
    page.get_by_role("button", name="Siguiente").click()
    expect(page.locator("h1")).to_have_text("Datos del ticket")
    assert urlsplit(page.url).path == "/facturar/demo/rfc"
    warning = page.get_by_role("dialog", name="¿Sigue ahí?")
    expect(warning).to_be_hidden()
    page.clock.run_for(app.config["KIOSK_IDLE_SECONDS"] * 1000)  # the customer walked away
    expect(warning).to_be_visible()
    assert page.errors == []
    page.go_back()
    page.wait_for_url("**/kiosco/")


@pytest.mark.browser
def test_a_refused_step_shows_its_notice_and_keeps_the_page(page, live_server, demo):
    """A POST the app refuses before the step answers (here a NUL, a 400 everywhere; an
    expired form too) answers htmx with a notice for #avisos: it shows, and the page stays."""
    page.goto(live_server + "/facturar/demo/")
    page.get_by_label("Sucursal Centro Histórico").check()
    page.get_by_label("RFC", exact=True).fill("XOJI740919U48\x00")
    page.get_by_role("button", name="Siguiente").click()
    expect(page.locator("#avisos")).to_contain_text("No pudimos entender la solicitud")
    expect(page.locator("main h1")).to_have_text("Sucursal y RFC")
    assert page.get_by_label("Sucursal Centro Histórico").is_checked()
