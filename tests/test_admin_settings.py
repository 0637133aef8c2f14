"""Issuer settings (/admin/emisor): fiscal data, invoicing policy, PAC, logo and colour;
scoped to the issuer, for issuer admins and the operator only."""

from __future__ import annotations

import io
import json
import re

import pytest
from sqlalchemy import select

from webapp import crypto
from webapp.extensions import db
from webapp.models import Branch, Invoice, Issuer

PNG_1PX = bytes.fromhex(  # one white pixel, as webapp.images re-encodes it (so stored as sent)
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffffff7f0009fb03fdf5d8f19a0000000049454e44ae426082"
)
SVG = '<svg xmlns="http://www.w3.org/2000/svg"{}>{}</svg>'
XLINK = ' xmlns:xlink="http://www.w3.org/1999/xlink"'
SVG_OK = SVG.format(' width="10"', '<rect width="10" height="10" fill="#123456"/>').encode()


def _issuer(app, slug="demo") -> Issuer:
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
        db.session.expunge(issuer)
        return issuer


def _fresh(app, slug="demo"):
    with app.app_context():
        return db.session.scalar(select(Issuer).where(Issuer.slug == slug))


FISCAL = {
    "rfc": "TDG150312K46",
    "legal_name": "TIENDAS DEMO LA GAVIOTA",
    "regimen": "601",
    "cp": "06000",
}


def _billing(**changes):
    data = {
        "serie": "A",
        "next_folio": "10",
        "window_kind": "days_after",
        "window_days": "15",
        "window_day": "3",
        "formas_pago": ["01", "04"],
        "global_policy": "refuse",
        "global_periodicity": "04",
        "guest_invoicing": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# --- Access and scoping ------------------------------------------------------------------


def test_admin_sees_own_issuer(client, staff, admin_login):
    admin_login(client, staff["admin"])
    page = client.get("/admin/emisor")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "TDG150312K46" in text and "EKU9003173C9" not in text
    assert "Número de certificado" in text


def test_other_admin_sees_and_changes_only_theirs(app, client, staff, admin_login):
    admin_login(client, staff["other_admin"])
    text = client.get("/admin/emisor").get_data(as_text=True)
    assert "EKU9003173C9" in text and "TDG150312K46" not in text
    response = client.post(
        "/admin/emisor/fiscal",
        data={"legal_name": "ESCUELA KEMPER", "regimen": "603", "cp": "42501", "rfc": "X"},
    )
    assert response.status_code == 303
    assert _fresh(app).legal_name == "TIENDAS DEMO LA GAVIOTA"
    other = _fresh(app, "otro")
    assert other.legal_name == "ESCUELA KEMPER" and other.rfc == "EKU9003173C9"


def test_ids_unique_with_the_csd_dialog_open(client, staff, admin_login):
    admin_login(client, staff["admin"])
    page = client.get("/admin/emisor").get_data(as_text=True)
    dialog = client.get("/admin/emisor/csd", headers={"HX-Request": "true"}).get_data(as_text=True)
    page_ids = re.findall(r' id="([^"]+)"', page)
    dialog_ids = re.findall(r' id="([^"]+)"', dialog)
    assert len(page_ids) == len(set(page_ids))
    assert not (set(page_ids) - {"modal-title"}) & set(dialog_ids)


def test_branch_staff_get_403(client, staff, admin_login):
    admin_login(client, staff["branch"])
    assert client.get("/admin/emisor").status_code == 403
    assert client.post("/admin/emisor/fiscal", data=FISCAL).status_code == 403
    assert client.post("/admin/emisor/pac", data={"provider": "sw"}).status_code == 403
    assert client.get("/admin/emisor/csd").status_code == 403


def test_needs_sign_in(client, staff):
    assert client.get("/admin/emisor").status_code == 303


# --- Fiscal data -------------------------------------------------------------------------


def test_fiscal_data_saved(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    response = client.post("/admin/emisor/fiscal", data=dict(FISCAL, legal_name="GAVIOTA  NUEVA"))
    assert response.status_code == 303
    assert "guardado=fiscal" in response.headers["Location"]
    assert _fresh(app).legal_name == "GAVIOTA NUEVA"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("legal_name", "Tiendas Demo", "en mayúsculas"),
        ("legal_name", "TIENDAS DEMO SA DE CV", "régimen societario"),
        ("legal_name", "", "Escriba la razón social"),
        ("regimen", "605", "persona moral"),
        ("regimen", "999", "catálogo del SAT"),
        ("cp", "1234", "5 dígitos"),
        ("cp", "00000", "no existe en el catálogo"),
    ],
)
def test_fiscal_data_refused(app, client, staff, admin_login, field, value, message):
    admin_login(client, staff["admin"])
    response = client.post("/admin/emisor/fiscal", data=dict(FISCAL, **{field: value}))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text
    assert f'id="{field}-error"' in text
    assert _fresh(app).legal_name == "TIENDAS DEMO LA GAVIOTA"


def test_only_operator_changes_rfc(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    response = client.post("/admin/emisor/fiscal", data=dict(FISCAL, rfc="EKU9003173C9"))
    assert response.status_code == 303  # the RFC typed is ignored
    assert _fresh(app).rfc == "TDG150312K46"
    assert "readonly" in client.get("/admin/emisor").get_data(as_text=True)


def test_operator_changes_rfc_and_csd_is_dropped(app, client, staff, admin_login):
    admin_login(client, staff["operator"])
    client.post("/admin/emisores", data={"issuer": staff["issuer_id"]})
    bad = client.post("/admin/emisor/fiscal", data=dict(FISCAL, rfc="TDG150312K47"))
    assert bad.status_code == 422 and "dígito verificador" in bad.get_data(as_text=True)
    taken = client.post("/admin/emisor/fiscal", data=dict(FISCAL, rfc="EKU9003173C9"))
    assert taken.status_code == 422 and "otro emisor" in taken.get_data(as_text=True)
    ok = client.post("/admin/emisor/fiscal", data=dict(FISCAL, rfc="XIA190128J61"))
    assert ok.status_code == 303, ok.get_data(as_text=True)
    issuer = _fresh(app)
    assert issuer.rfc == "XIA190128J61" and issuer.csd_certificate is None
    assert "Sin CSD" in client.get("/admin/emisor").get_data(as_text=True)


# --- Invoicing policy --------------------------------------------------------------------


def test_billing_saved(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    response = client.post("/admin/emisor/facturacion", data=_billing())
    assert response.status_code == 303, response.get_data(as_text=True)
    issuer = _fresh(app)
    assert issuer.window_policy == "days_after:15"
    assert issuer.formas_pago == "01,04"
    assert (issuer.global_policy, issuer.global_periodicity) == ("refuse", "04")
    assert issuer.guest_invoicing is False and issuer.next_folio == 10
    page = client.get("/admin/emisor").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="days_after"', page)
    assert re.search(r'<input[^>]*id="window_days"[^>]*value="15"', page)


@pytest.mark.parametrize(
    ("kind", "extra", "stored"),
    [
        ("same_month", {}, "same_month:0"),
        ("until_day_next_month", {"window_day": "5"}, "until_day_next_month:5"),
    ],
)
def test_window_kinds(app, client, staff, admin_login, kind, extra, stored):
    admin_login(client, staff["admin"])
    response = client.post("/admin/emisor/facturacion", data=_billing(window_kind=kind, **extra))
    assert response.status_code == 303
    assert _fresh(app).window_policy == stored


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"formas_pago": []}, "formas_pago", "al menos una forma de pago"),
        ({"formas_pago": ["01", "77"]}, "formas_pago", "catálogo del SAT"),
        ({"window_kind": "days_after", "window_days": "400"}, "window_days", "de 0 a 366"),
        ({"window_kind": "until_day_next_month", "window_day": "0"}, "window_day", "de 1 a 31"),
        ({"window_kind": "whenever"}, "window_kind", "plazo"),
        ({"next_folio": "0"}, "next_folio", "entero positivo"),
        ({"next_folio": "abc"}, "next_folio", "entero positivo"),
        ({"serie": "A|B"}, "serie", "letras, números"),
        ({"global_periodicity": "06"}, "global_periodicity", "periodicidad"),
        ({"global_policy": "maybe"}, "global_policy", "factura global"),
    ],
)
def test_billing_refused(app, client, staff, admin_login, changes, field, message):
    admin_login(client, staff["admin"])
    response = client.post("/admin/emisor/facturacion", data=_billing(**changes))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text and f'id="{field}-error"' in text
    assert _fresh(app).window_policy == "until_day_next_month:3"


def test_folio_only_goes_up(app, client, staff, admin_login):
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        branch = db.session.scalar(select(Branch).where(Branch.issuer_id == issuer.id))
        db.session.add(_invoice(issuer, branch, "A", 41))
        db.session.commit()
    admin_login(client, staff["admin"])
    response = client.post("/admin/emisor/facturacion", data=_billing(next_folio="41"))
    assert response.status_code == 422
    assert "El folio 41 de la serie A ya se usó" in response.get_data(as_text=True)
    assert (
        client.post("/admin/emisor/facturacion", data=_billing(next_folio="42")).status_code == 303
    )
    # Another serie starts where the merchant likes.
    ok = client.post("/admin/emisor/facturacion", data=_billing(serie="b", next_folio="1"))
    assert ok.status_code == 303
    assert (_fresh(app).serie, _fresh(app).next_folio) == ("B", 1)


def _invoice(issuer, branch, serie, folio):
    from datetime import UTC, datetime
    from decimal import Decimal

    return Invoice(
        issuer_id=issuer.id,
        branch_id=branch.id,
        serie=serie,
        folio=folio,
        fecha=datetime.now(UTC),
        receptor_rfc="XIA190128J61",
        receptor_nombre="X",
        receptor_cp="06000",
        receptor_regimen="601",
        uso_cfdi="G03",
        forma_pago="01",
        subtotal=Decimal("1.00"),
        taxes=Decimal("0.16"),
        total=Decimal("1.16"),
    )


# --- PAC ---------------------------------------------------------------------------------


def test_pac_credentials_stored_encrypted_and_never_shown(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    missing = client.post("/admin/emisor/pac", data={"provider": "finkok", "username": "u"})
    assert missing.status_code == 422
    assert "contraseña de Finkok" in missing.get_data(as_text=True)
    assert 'id="pac_password-error"' in missing.get_data(as_text=True)
    response = client.post(
        "/admin/emisor/pac",
        data={"provider": "finkok", "username": "tienda@x.mx", "password": "S3creta-PAC"},
    )
    assert response.status_code == 303
    issuer = _fresh(app)
    assert issuer.pac_provider == "finkok"
    assert b"S3creta-PAC" not in issuer.pac_credentials_encrypted
    with app.app_context():
        stored = json.loads(crypto.decrypt(issuer.pac_credentials_encrypted))
    assert stored == {"username": "tienda@x.mx", "password": "S3creta-PAC"}
    page = client.get("/admin/emisor").get_data(as_text=True)
    assert "S3creta-PAC" not in page and "tienda@x.mx" not in page
    assert "guardadas" in page
    # Saving again without typing them keeps them.
    assert client.post("/admin/emisor/pac", data={"provider": "finkok"}).status_code == 303
    assert _fresh(app).pac_credentials_encrypted == issuer.pac_credentials_encrypted
    # SW needs its token.
    sw = client.post("/admin/emisor/pac", data={"provider": "sw"})
    assert sw.status_code == 422 and "token de SW" in sw.get_data(as_text=True)
    assert client.post("/admin/emisor/pac", data={"provider": "nope"}).status_code == 422
    # Back to the platform's: credentials dropped.
    assert client.post("/admin/emisor/pac", data={"provider": ""}).status_code == 303
    issuer = _fresh(app)
    assert issuer.pac_provider is None and issuer.pac_credentials_encrypted is None


def test_pac_for_picks_the_issuers_provider(app, staff):
    from webapp.cfdi.pac.finkok import FinkokPac
    from webapp.cfdi.pac.sw import SwPac
    from webapp.wiring import stamping

    with app.test_request_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        default = stamping().pac_for(issuer)
        assert default is stamping().providers.deployment()
        issuer.pac_provider = "sw"
        issuer.pac_credentials_encrypted = crypto.encrypt(json.dumps({"token": "t0k"}).encode())
        sw = stamping().pac_for(issuer)
        assert isinstance(sw, SwPac) and sw is stamping().pac_for(issuer)
        issuer.pac_provider = "finkok"
        issuer.pac_credentials_encrypted = crypto.encrypt(
            json.dumps({"username": "u", "password": "p"}).encode()
        )
        finkok = stamping().pac_for(issuer)
        assert isinstance(finkok, FinkokPac)
        issuer.pac_credentials_encrypted = crypto.encrypt(
            json.dumps({"username": "u", "password": "other"}).encode()
        )
        assert stamping().pac_for(issuer) is not finkok  # new credentials, new client
        db.session.rollback()


# --- Logo and colour ---------------------------------------------------------------------


def _brand(client, color="", logo=None, name="logo.png", **extra):
    data = {"color": color, **extra}
    if logo is not None:
        data["logo"] = (io.BytesIO(logo), name)
    return client.post("/admin/emisor/marca", data=data, content_type="multipart/form-data")


def test_brand_colour_and_logo_served(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    response = _brand(client, "#1F4E79", PNG_1PX)
    assert response.status_code == 303, response.get_data(as_text=True)
    css = client.get("/marca/demo.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert css.get_data(as_text=True).strip() == ":root{--accent:#1f4e79}"
    etag = css.headers["ETag"]
    assert client.get("/marca/demo.css", headers={"If-None-Match": etag}).status_code == 304
    logo = client.get("/marca/demo/logo")
    assert logo.status_code == 200 and logo.mimetype == "image/png"
    assert logo.headers["X-Content-Type-Options"] == "nosniff"
    assert logo.data == PNG_1PX and logo.headers.get("ETag")
    # The customer's pages of that issuer link both; the stylesheet at an address naming its
    # colour, which the browser keeps without asking again.
    page = client.get("/facturar/demo/").get_data(as_text=True)
    assert "/marca/demo.css?v=1f4e79" in page and "/marca/demo/logo" in page
    kept = client.get("/marca/demo.css?v=1f4e79")
    assert (
        "immutable" in kept.headers["Cache-Control"]
        and "max-age=31536000" in (kept.headers["Cache-Control"])
    )
    assert "immutable" not in client.get("/marca/demo.css?v=000000").headers["Cache-Control"]
    # Another issuer's pages do not.
    assert "/marca/demo" not in client.get("/facturar/otro/").get_data(as_text=True)
    assert client.get("/marca/otro/logo").status_code == 404
    assert client.get("/marca/nadie.css").status_code == 404


def test_svg_logo_served_with_its_own_csp(client, staff, admin_login):
    admin_login(client, staff["admin"])
    assert _brand(client, "", SVG_OK, "logo.svg").status_code == 303
    logo = client.get("/marca/demo/logo")
    assert logo.mimetype == "image/svg+xml"
    assert (
        logo.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert logo.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("logo", "name", "message"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "x.svg",
            "scripts",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "x.svg", "scripts"),
        (
            SVG.format(XLINK, '<image xlink:href="https://evil.example/x.png"/>').encode(),
            "x.svg",
            "referencias externas",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
            "x.svg",
            "entidades",
        ),
        (
            SVG.format("", '<a href="javascript:alert(1)"><rect/></a>').encode(),
            "x.svg",
            "referencias",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(https://evil.example/a.css);</style></svg>',
            "x.svg",
            "referencias",
        ),
        (b"<svg", "x.svg", "no es válido"),
        (b"<html><body>hi</body></html>", "x.svg", "PNG o SVG"),
        (b"GIF89a....", "x.gif", "PNG o SVG"),
        (PNG_1PX[:12], "x.png", "PNG o SVG"),
        (PNG_1PX + b"\0" * 51 * 1024, "x.png", "50 KB"),
    ],
)
def test_bad_logos_refused(app, client, staff, admin_login, logo, name, message):
    admin_login(client, staff["admin"])
    response = _brand(client, "", logo, name)
    assert response.status_code in (413, 422)
    if response.status_code == 422:
        text = response.get_data(as_text=True)
        assert message in text and 'id="logo-error"' in text
    assert _fresh(app).logo_type is None


@pytest.mark.parametrize(
    ("color", "message"),
    [("#ffff00", "4.5:1"), ("#7fbf7f", "contraste"), ("red", "#rrggbb"), ("#12345", "#rrggbb")],
)
def test_bad_colours_refused(app, client, staff, admin_login, color, message):
    admin_login(client, staff["admin"])
    response = _brand(client, color)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _fresh(app).brand_color is None


def test_remove_logo(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    _brand(client, "#0b5d3b", PNG_1PX)
    assert _brand(client, "#0b5d3b", remove_logo="y").status_code == 303
    assert _fresh(app).logo_type is None
    assert client.get("/marca/demo/logo").status_code == 404


def test_contrast_ratio():
    from webapp.branding import contrast_with_white

    assert round(contrast_with_white("#000000"), 1) == 21.0
    assert round(contrast_with_white("#ffffff"), 1) == 1.0
    assert contrast_with_white("#0b5d3b") >= 4.5


def test_pdf_carries_logo_and_colour(tmp_path):
    from webapp.cfdi import build, render_pdf, samples, sign
    from webapp.cfdi.pac.sandbox import SandboxPac
    from webapp.cfdi.pdf import render_html

    xml = SandboxPac(tmp_path).stamp(sign(build(samples.draft(1, folio=1)), samples.signer())).xml
    plain = render_html(xml)
    branded = render_html(xml, logo=PNG_1PX, color="#1F4E79")
    assert "background-color: #1f4e79" in branded and "color: #1f4e79" in branded
    assert 'width="40" height="40"' in branded
    assert "background-color: #333333" in plain
    # An SVG logo is left out of the PDF; a colour that is not #rrggbb too.
    svg = render_html(xml, logo=SVG_OK, color="red;}body{x")
    assert "#333333" in svg and "red;" not in svg and 'width="40"' not in svg
    assert render_pdf(xml, branch_name=None, sandbox=True, logo=PNG_1PX, color="#1f4e79")[:4] == (
        b"%PDF"
    )


def test_pdf_for_uses_the_issuers_branding(app, monkeypatch):
    from types import SimpleNamespace

    from webapp.services import stamping

    seen = {}
    monkeypatch.setattr(stamping, "render_pdf", lambda xml, **kw: seen.update(kw) or b"%PDF")
    issuer = SimpleNamespace(
        country="MX", logo=PNG_1PX, logo_type="image/png", brand_color="#1f4e79"
    )
    invoice = SimpleNamespace(
        issuer=issuer, branch=SimpleNamespace(name="Centro"), test_stamp=False
    )
    stamping.pdf_of(invoice, b"<xml/>")
    assert seen["logo"] == PNG_1PX and seen["color"] == "#1f4e79"
    assert seen["sandbox"] is False  # the invoice's own stamp says whether it is a test
    issuer.logo_type = "image/svg+xml"
    invoice.test_stamp = True
    stamping.pdf_of(invoice, b"<xml/>")
    assert seen["logo"] is None  # xhtml2pdf draws no SVG
    assert seen["sandbox"] is True
