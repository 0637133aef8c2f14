"""Issue 13, points 9 and 11: where `next` and `volver` may send a browser, and personal pages
that neither the browser nor a proxy keeps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from tests.flows import EMAIL, PASSWORD, RFC, verified_account
from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.models import Invoice, InvoiceStatus

# --- Point 9: redirect targets -------------------------------------------------------------

OTHER_HOSTS = [
    "/\t/evil.example/",
    "//evil.example",
    "//evil.example/cuenta/",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/%09/evil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "https:evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
]
AROUND = ["", " ", "\t", "\x01", "\x1f", "\x7f"]
HOSTILE = sorted({f"{a}{t}{b}" for t in OTHER_HOSTS for a in AROUND for b in ("", " ", "\t")})
BROKEN = [
    "/cuenta/\r\nSet-Cookie: a=b",
    "/admin/facturas\r\nSet-Cookie: a=b",
    "/facturas/\r",
    "/\r/evil.example",
    "\n//evil.example",
]


def _stays_here(location: str) -> bool:
    """A browser reading `location` (tab, CR, LF dropped, controls and spaces stripped around
    it, backslash read as slash, or once percent-decoded) stays on this site: a single "/"
    followed by a character that is neither a slash nor a backslash, or exactly "/"."""
    for form in (location, unquote(location)):
        seen = re.sub(r"[\t\r\n]", "", form).strip("\x00- ").replace("\\", "/")
        if not (seen == "/" or re.match(r"/[^/\\]", seen)):
            return False
    return True


@pytest.fixture
def customer(app):
    with app.app_context():
        verified_account(RFC, EMAIL)


def _customer_sign_in(app, target):
    return app.test_client().post(
        "/cuenta/entrar",
        query_string={"next": target},
        data={"identifier": RFC, "password": PASSWORD},
    )


def _staff_sign_in(app, target, email):
    return app.test_client().post(
        "/admin/entrar",
        query_string={"next": target},
        data={"email": email, "password": STAFF_PASSWORD},
    )


def _language(app, target):
    return app.test_client().post("/idioma", data={"lang": "en", "next": target})


def _check(response, target) -> None:
    assert response.status_code < 500, (target, response.status_code)
    if 300 <= response.status_code < 400:
        assert _stays_here(response.headers["Location"]), (target, response.headers["Location"])


def test_no_sign_in_or_redirect_leaves_the_site(app, client, customer, staff):
    """Each hostile target against each endpoint that reads `next` or `volver`: no 500, and
    the browser stays here (a target refused goes to the endpoint's usual page)."""
    assert _stays_here("/") and _stays_here("/cuenta/?a=%2F%2Fb")
    assert not any(_stays_here(target) for target in HOSTILE)
    client.post("/cuenta/entrar", data={"identifier": RFC, "password": PASSWORD})
    endpoints = {
        "customer sign-in": lambda t: _customer_sign_in(app, t),
        "staff sign-in": lambda t: _staff_sign_in(app, t, staff["admin"]),
        "language": lambda t: _language(app, t),
        "panel zip": lambda t: client.post("/facturas/zip", data={"volver": t}),
    }
    for name, answer in endpoints.items():
        for target in HOSTILE:
            response = answer(target)
            assert response.status_code == 303, (name, target)
            _check(response, (name, target))
    # A path of the site is still followed.
    assert _customer_sign_in(app, "/facturas/?q=1").headers["Location"] == "/facturas/?q=1"
    ok = _staff_sign_in(app, "/admin/facturas", staff["admin"])
    assert ok.headers["Location"] == "/admin/facturas"
    assert _language(app, "/facturar/").headers["Location"] == "/facturar/"
    back = client.post("/facturas/zip", data={"volver": "/facturas/?q=1"})
    assert back.headers["Location"] == "/facturas/?q=1&aviso=ninguna"


def test_cr_or_lf_in_a_target_is_a_bad_request(app, client, customer, staff):
    client.post("/cuenta/entrar", data={"identifier": RFC, "password": PASSWORD})
    for target in BROKEN:
        assert _customer_sign_in(app, target).status_code == 400, target
        assert _staff_sign_in(app, target, staff["admin"]).status_code == 400, target
        assert _language(app, target).status_code == 400, target
        assert client.post("/facturas/zip", data={"volver": target}).status_code == 400, target
        r = client.get("/facturas/x/reenviar", query_string={"volver": target})
        assert r.status_code == 400, target


def test_a_bad_target_refused_before_the_password_is_checked(app, customer):
    """A 400 that leaves the account as it was: not signed in, no failure counted."""
    client = app.test_client()
    r = client.post(
        "/cuenta/entrar",
        query_string={"next": "/\r\n/evil.example"},
        data={"identifier": RFC, "password": "wrong"},
    )
    assert r.status_code == 400
    assert client.get("/cuenta/").status_code in (302, 303)


# --- Point 11: personal pages are not stored --------------------------------------------------


def _no_store(response, what) -> None:
    assert response.status_code < 400, (what, response.status_code)
    assert "no-store" in response.headers.get("Cache-Control", ""), what


def test_a_customers_pages_are_not_stored(app, client, stamped):
    public_id = stamped[0]
    pages = [
        "/cuenta/",
        "/cuenta/perfil/",
        "/facturas/",
        "/facturas/?q=XOJI",
        "/facturas/exportar.csv",
        "/facturas/exportar.xlsx",
        "/facturas/exportar.zip",
        f"/facturas/{public_id}.xml",
        f"/facturas/{public_id}/reenviar",
        f"/facturar/factura/{public_id}",
        f"/facturar/factura/{public_id}.pdf",
    ]
    for url in pages:
        _no_store(client.get(url), url)
    fragment = {"HX-Request": "true", "HX-Target": "resultados"}
    _no_store(client.get("/facturas/?q=XOJI", headers=fragment), "panel fragment")
    _no_store(client.get(f"/facturas/{public_id}/reenviar", headers=fragment), "dialog")
    # Public pages and static files keep their caching (tests/test_compression.py: max-age).
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
    assert "no-store" not in client.get("/facturar/").headers.get("Cache-Control", "")
    assert "no-store" not in client.get("/static/app.css").headers.get("Cache-Control", "")


def test_the_page_that_waits_for_the_invoice_is_not_stored(app, client, stamped):
    with app.app_context():
        invoice = db.session.scalar(select(Invoice).where(Invoice.public_id == stamped[0]))
        invoice.status = InvoiceStatus.SIGNED
        invoice.updated_at = datetime.now(UTC)
        db.session.commit()
    for headers in ({}, {"HX-Request": "true", "HX-Target": "esperando"}):
        waiting = client.get(f"/facturar/factura/{stamped[0]}", headers=headers)
        assert waiting.status_code == 202
        _no_store(waiting, headers)


def test_the_back_offices_invoices_are_not_stored(app, stamped, staff, admin_login):
    client = app.test_client()
    admin_login(client, staff["admin"])
    for url in ("/admin/facturas", "/admin/facturas?q=XOJI", f"/admin/facturas/{stamped[0]}"):
        _no_store(client.get(url), url)
    _no_store(client.get("/admin/facturas", headers={"HX-Request": "true"}), "admin fragment")
