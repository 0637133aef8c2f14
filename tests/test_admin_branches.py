"""Back office: branches (list, create, edit, disable/enable) and their kiosks (enrolment
link and QR, revoke), scoped to the issuer."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.kiosk.web import COOKIE
from webapp.models import Branch, Issuer, Kiosk, Ticket, TicketStatus

HTMX = {"HX-Request": "true"}
NEW = {"code": "sur-2", "name": "Sucursal Sur", "cp": "06600", "address": "Av. Sur 12"}


def _branch(app, code: str, slug: str = "demo") -> Branch:
    with app.app_context():
        return db.session.scalar(
            select(Branch).join(Issuer).where(Issuer.slug == slug, Branch.code == code)
        )


@pytest.fixture
def admin(client, staff, admin_login):
    admin_login(client, staff["admin"])
    return client


def _page(response) -> str:
    return response.get_data(as_text=True)


# --- The list -----------------------------------------------------------------------------


def test_list_shows_the_issuers_branches_with_open_tickets(app, admin):
    response = admin.get("/admin/sucursales")
    page = _page(response)
    assert response.status_code == 200
    for code, cp in (("CENTRO", "06000"), ("POLANCO", "11560"), ("COYOACAN", "04000")):
        assert code in page and cp in page
    assert "NORTE" not in page  # the other issuer's
    with app.app_context():
        centro = _branch(app, "CENTRO")
        count = db.session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.branch_id == centro.id, Ticket.status == TicketStatus.OPEN)
        )
    assert count > 0
    row = re.search(r"CENTRO</a></td>.*?</tr>", page, re.S).group(0)
    assert f'class="num">{count:,}<' in row
    assert 'href="/admin/sucursales"' in page and "Sucursales" in page  # in the menu


# --- Create and edit ----------------------------------------------------------------------


def test_create_a_branch_without_javascript(app, admin):
    form = admin.get("/admin/sucursales/nueva")
    assert form.status_code == 200 and "<html" in _page(form)
    response = admin.post("/admin/sucursales/nueva", data=NEW)
    assert response.status_code == 303
    created = _branch(app, "SUR-2")  # uppercased
    assert created is not None and created.active and created.cp == "06600"
    assert response.headers["Location"].startswith(f"/admin/sucursales/{created.id}")
    page = _page(admin.get(response.headers["Location"]))
    assert "Sucursal agregada." in page and "Av. Sur 12" in page
    assert "SUR-2" in _page(admin.get("/admin/sucursales"))
    # customers can pick it
    assert "Sucursal Sur" in _page(app.test_client().get("/facturar/demo/"))


def test_create_in_the_dialog(app, admin):
    fragment = admin.get("/admin/sucursales/nueva", headers=HTMX)
    html = _page(fragment)
    assert fragment.status_code == 200 and "<html" not in html
    assert 'id="modal-title"' in html and 'hx-target="#modal"' in html
    bad = admin.post("/admin/sucursales/nueva", data=dict(NEW, cp="123"), headers=HTMX)
    assert bad.status_code == 200 and "El código postal tiene 5 dígitos." in _page(bad)
    assert "<html" not in _page(bad)
    good = admin.post("/admin/sucursales/nueva", data=NEW, headers=HTMX)
    assert good.status_code == 204
    assert good.headers["HX-Redirect"].startswith("/admin/sucursales/")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (dict(NEW, code=""), "Escriba la clave de la sucursal."),
        (dict(NEW, code="SUR 2"), "Use hasta 20 letras sin acentos"),
        (dict(NEW, code="AÑIL"), "Use hasta 20 letras sin acentos"),
        (dict(NEW, code="X" * 21), "Use hasta 20 letras sin acentos"),
        (dict(NEW, code="centro"), "Ya hay una sucursal con esa clave."),
        (dict(NEW, name=""), "Escriba el nombre de la sucursal."),
        (dict(NEW, cp=""), "Escriba el código postal de la sucursal."),
        (dict(NEW, cp="6600a"), "El código postal tiene 5 dígitos."),
        (dict(NEW, cp="00001"), "no está en el catálogo del SAT"),
        (dict(NEW, address="x" * 501), "La dirección es demasiado larga."),
    ],
)
def test_invalid_branch_is_refused_next_to_the_field(app, admin, data, message):
    response = admin.post("/admin/sucursales/nueva", data=data)
    page = _page(response)
    assert response.status_code == 422
    assert message in page and 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Branch)) == 4  # 3 + NORTE


def test_a_code_of_another_issuer_is_free(app, admin):
    response = admin.post("/admin/sucursales/nueva", data=dict(NEW, code="NORTE"))
    assert response.status_code == 303
    assert _branch(app, "NORTE").id != _branch(app, "NORTE", "otro").id


def test_edit_a_branch(app, admin):
    centro = _branch(app, "CENTRO")
    url = f"/admin/sucursales/{centro.id}/editar"
    form = _page(admin.get(url))
    assert 'value="CENTRO"' in form and 'value="06000"' in form
    data = {"code": "CENTRO", "name": "Centro renovado", "cp": "06010", "address": "Madero 1"}
    response = admin.post(url, data=data)
    assert response.status_code == 303
    edited = _branch(app, "CENTRO")
    assert (edited.name, edited.cp, edited.address) == ("Centro renovado", "06010", "Madero 1")
    taken = admin.post(url, data=dict(data, code="POLANCO"))
    assert taken.status_code == 422 and "Ya hay una sucursal con esa clave." in _page(taken)
    assert _branch(app, "CENTRO").name == "Centro renovado"


# --- Disable and enable -------------------------------------------------------------------


def test_disable_hides_the_branch_from_customers_and_enable_brings_it_back(app, admin):
    centro = _branch(app, "CENTRO")
    customer = app.test_client()
    assert "Sucursal Centro Histórico" in _page(customer.get("/facturar/demo/"))

    response = admin.post(f"/admin/sucursales/{centro.id}/estado", data={"active": "0"})
    assert response.status_code == 303
    assert "ya no aparece a los clientes" in _page(admin.get(response.headers["Location"]))
    assert _branch(app, "CENTRO").active is False
    assert "desactivada" in _page(admin.get("/admin/sucursales"))
    assert "Sucursal Centro Histórico" not in _page(customer.get("/facturar/demo/"))
    refused = customer.post("/facturar/demo/", data={"branch": str(centro.id)})
    assert refused.status_code == 422 and "Elija la sucursal donde compró." in _page(refused)
    with app.app_context():  # its tickets stay
        assert db.session.scalar(select(func.count()).where(Ticket.branch_id == centro.id)) > 0

    admin.post(f"/admin/sucursales/{centro.id}/estado", data={"active": "1"})
    assert _branch(app, "CENTRO").active is True
    assert "Sucursal Centro Histórico" in _page(customer.get("/facturar/demo/"))
    assert admin.post(f"/admin/sucursales/{centro.id}/estado", data={}).status_code == 400


# --- Kiosks -------------------------------------------------------------------------------


def _enrol_path(admin, branch_id: int, name: str = "Caja 1") -> tuple[str, str]:
    """Create a kiosk in the admin: (its enrolment page, the enrolment path it shows)."""
    response = admin.post(f"/admin/sucursales/{branch_id}/quioscos/nuevo", data={"name": name})
    assert response.status_code == 303
    page_url = response.headers["Location"]
    page = admin.get(page_url)
    assert page.headers["Cache-Control"] == "no-store"
    link = re.search(r'value="http://localhost(/kiosco/alta/[^"]+)"', _page(page)).group(1)
    return page_url, link


def test_enrol_a_kiosk_from_the_branch_page(app, admin):
    centro = _branch(app, "CENTRO")
    page_url, link = _enrol_path(admin, centro.id)
    html = _page(admin.get(page_url))
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert 'class="qr"' in svg and "<title>" in svg and "style" not in svg
    assert "style=" not in html and "<script>" not in html
    assert 'class="kiosk"' not in html and "expirado" not in html  # the admin is no kiosk

    listing = _page(admin.get(f"/admin/sucursales/{centro.id}"))
    assert "Caja 1" in listing and "pendiente de alta" in listing

    device = app.test_client()
    assert device.post(link).status_code == 303
    assert device.get("/kiosco/").status_code == 200  # kiosk mode
    listing = _page(admin.get(f"/admin/sucursales/{centro.id}"))
    assert "activo" in listing and "pendiente de alta" not in listing
    # the link worked once; the enrolment page says so and shows no new link
    assert app.test_client().post(link).status_code == 410
    after = _page(admin.get(page_url))
    assert "ya está inscrito" in after and "/kiosco/alta/" not in after


def test_a_revoked_kiosk_is_a_normal_browser_at_once(app, admin):
    centro = _branch(app, "CENTRO")
    _, link = _enrol_path(admin, centro.id)
    device = app.test_client()
    device.post(link)
    assert device.get_cookie(COOKIE) is not None
    with app.app_context():
        kiosk = db.session.scalars(select(Kiosk)).one()
    url = f"/admin/sucursales/{centro.id}/quioscos/{kiosk.id}/revocar"

    confirm = admin.get(url, headers=HTMX)
    assert confirm.status_code == 200 and "¿Revocar el quiosco Caja 1?" in _page(confirm)
    assert "<html" not in _page(confirm)
    whole = _page(admin.get(url))  # without JavaScript, a page
    assert "<html" in whole and 'class="kiosk"' not in whole
    assert device.get("/kiosco/").status_code == 200  # asking changed nothing

    response = admin.post(url)
    assert response.status_code == 303
    assert "Quiosco revocado" in _page(admin.get(response.headers["Location"]))
    start = device.get("/kiosco/")
    assert start.status_code == 303 and start.headers["Location"] == "/"
    assert device.get_cookie(COOKIE) is None  # cleared: a normal browser again
    assert "revocado" in _page(admin.get(f"/admin/sucursales/{centro.id}"))


def test_revoking_a_pending_kiosk_kills_its_link(app, admin):
    centro = _branch(app, "CENTRO")
    _, link = _enrol_path(admin, centro.id)
    with app.app_context():
        kiosk = db.session.scalars(select(Kiosk)).one()
    response = admin.post(
        f"/admin/sucursales/{centro.id}/quioscos/{kiosk.id}/revocar", headers=HTMX
    )
    assert response.status_code == 204 and "HX-Redirect" in response.headers
    assert app.test_client().post(link).status_code == 410


def test_kiosk_name_is_required(app, admin):
    centro = _branch(app, "CENTRO")
    response = admin.post(f"/admin/sucursales/{centro.id}/quioscos/nuevo", data={"name": " "})
    assert response.status_code == 422 and "Escriba un nombre" in _page(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Kiosk)) == 0


def test_a_kiosk_of_another_branch_is_not_found_under_this_one(app, admin):
    centro, polanco = _branch(app, "CENTRO"), _branch(app, "POLANCO")
    _enrol_path(admin, centro.id)
    with app.app_context():
        kiosk = db.session.scalars(select(Kiosk)).one()
    base = f"/admin/sucursales/{polanco.id}/quioscos/{kiosk.id}"
    assert admin.get(base + "/alta").status_code == 404
    assert admin.post(base + "/revocar").status_code == 404
    with app.app_context():
        assert db.session.get(Kiosk, kiosk.id).revoked_at is None


# --- Scope --------------------------------------------------------------------------------


def test_other_issuers_admin_gets_404_for_demos_branches(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    centro = _branch(app, "CENTRO")
    _enrol_path(client, centro.id)
    with app.app_context():
        kiosk = db.session.scalars(select(Kiosk)).one()
    other = app.test_client()
    admin_login(other, staff["other_admin"])
    listing = _page(other.get("/admin/sucursales"))
    assert "NORTE" in listing and "CENTRO" not in listing
    base = f"/admin/sucursales/{centro.id}"
    k = f"{base}/quioscos/{kiosk.id}"
    for method, url, data in [
        ("get", base, None),
        ("get", base + "/editar", None),
        ("post", base + "/editar", dict(NEW, code="CENTRO")),
        ("post", base + "/estado", {"active": "0"}),
        ("get", base + "/quioscos/nuevo", None),
        ("post", base + "/quioscos/nuevo", {"name": "Intruso"}),
        ("get", k + "/alta", None),
        ("get", k + "/revocar", None),
        ("post", k + "/revocar", None),
    ]:
        assert getattr(other, method)(url, data=data).status_code == 404, url
    fresh = _branch(app, "CENTRO")
    assert fresh.active and fresh.name == "Sucursal Centro Histórico"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Kiosk)) == 1
        assert db.session.get(Kiosk, kiosk.id).revoked_at is None


def test_branch_staff_get_403(app, client, staff, admin_login):
    admin_login(client, staff["branch"])
    centro = _branch(app, "CENTRO")
    for url in (
        "/admin/sucursales",
        "/admin/sucursales/nueva",
        f"/admin/sucursales/{centro.id}",
        f"/admin/sucursales/{centro.id}/editar",
        f"/admin/sucursales/{centro.id}/quioscos/nuevo",
    ):
        assert client.get(url).status_code == 403, url
    assert (
        client.post(f"/admin/sucursales/{centro.id}/estado", data={"active": "0"}).status_code
        == 403
    )
    assert client.post("/admin/sucursales/nueva", data=NEW).status_code == 403
    assert 'href="/admin/sucursales"' not in _page(client.get("/admin/"))
    assert _branch(app, "CENTRO").active


def test_operator_works_on_the_issuer_picked(app, client, staff, admin_login):
    admin_login(client, staff["operator"])
    response = client.get("/admin/sucursales")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/emisores")
    client.post("/admin/emisores", data={"issuer": staff["other_issuer_id"]})
    listing = _page(client.get("/admin/sucursales"))
    assert "NORTE" in listing and "CENTRO" not in listing
    centro = _branch(app, "CENTRO")
    assert client.get(f"/admin/sucursales/{centro.id}").status_code == 404
    created = client.post("/admin/sucursales/nueva", data=dict(NEW, code="SUR"))
    assert created.status_code == 303
    assert _branch(app, "SUR", "otro") is not None and _branch(app, "SUR") is None

    client.post("/admin/emisores", data={"issuer": staff["issuer_id"]})
    listing = _page(client.get("/admin/sucursales"))
    assert "CENTRO" in listing and "NORTE" not in listing
    assert client.get(f"/admin/sucursales/{centro.id}").status_code == 200


def test_forms_need_the_csrf_token(make_app, demo, staff, admin_login):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    page = _page(client.get("/admin/entrar"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    signed = client.post(
        "/admin/entrar",
        data={"email": staff["admin"], "password": STAFF_PASSWORD, "csrf_token": token},
    )
    assert signed.status_code == 303
    assert client.post("/admin/sucursales/nueva", data=NEW).status_code == 400
    centro = _branch(app, "CENTRO")
    assert (
        client.post(f"/admin/sucursales/{centro.id}/estado", data={"active": "0"}).status_code
        == 400
    )
    form = _page(client.get("/admin/sucursales/nueva"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    assert (
        client.post("/admin/sucursales/nueva", data=dict(NEW, csrf_token=token)).status_code == 303
    )


# --- In a browser: the dialogs ------------------------------------------------------------


@pytest.mark.browser
def test_dialogs_in_a_browser(app, staff, live_server, page):
    from playwright.sync_api import expect

    page.goto(live_server + "/admin/entrar")
    page.get_by_label("Correo electrónico").fill(staff["admin"])
    page.get_by_label("Contraseña").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url("**/admin/")  # signed in (going elsewhere sooner could cut the answer off)
    page.goto(live_server + "/admin/sucursales")

    page.get_by_role("link", name="Agregar una sucursal").click()
    dialog = page.get_by_role("dialog", name="Agregar una sucursal")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Clave").fill("sur")
    dialog.get_by_label("Nombre").fill("Sucursal Sur")
    dialog.get_by_label("Código postal (lugar de expedición)").fill("0660")
    dialog.get_by_role("button", name="Guardar").click()
    expect(dialog.get_by_text("El código postal tiene 5 dígitos.")).to_be_visible()
    dialog.get_by_label("Código postal (lugar de expedición)").fill("06600")
    dialog.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("Sucursal agregada.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("SUR · Sucursal Sur")

    page.get_by_role("link", name="Inscribir un quiosco").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Nombre del quiosco").fill("Caja 1")
    dialog.get_by_role("button", name="Crear el enlace de alta").click()
    expect(page.locator("svg.qr")).to_be_visible()
    page.get_by_role("link", name="Volver a la sucursal").click()

    page.get_by_role("link", name="Revocar el quiosco Caja 1").click()
    dialog = page.get_by_role("dialog", name="¿Revocar el quiosco Caja 1?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancelar").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("link", name="Revocar el quiosco Caja 1").click()
    page.get_by_role("dialog").get_by_role("button", name="Revocar").click()
    expect(page.get_by_text("Quiosco revocado")).to_be_visible()
    assert page.errors == []
