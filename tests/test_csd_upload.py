"""Uploading the issuer's CSD (/admin/emisor/csd): only a valid CSD of the issuer's RFC whose
key opens with the password is stored, encrypted, and never shown again."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from webapp.cfdi.testcsd import make_test_csd
from webapp.csd import CSDError, check_csd, issuer_signer
from webapp.extensions import db
from webapp.models import Issuer

RFC, NAME, PASSWORD = "TDG150312K46", "TIENDAS DEMO LA GAVIOTA", "Clave-del-CSD-123"


def _post(client, cer, key, password=PASSWORD, htmx=False):
    data = {
        "cer": (io.BytesIO(cer), "csd.cer"),
        "key": (io.BytesIO(key), "csd.key"),
        "password": password,
    }
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(
        "/admin/emisor/csd", data=data, content_type="multipart/form-data", headers=headers
    )


def _issuer(app) -> Issuer:
    with app.app_context():
        return db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))


@pytest.fixture
def signed_in(client, staff, admin_login):
    admin_login(client, staff["admin"])
    return client


def test_valid_csd_stored_encrypted_and_never_shown(app, signed_in):
    before = _issuer(app).csd_number
    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    response = _post(signed_in, cer, key)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert "guardado=csd" in response.headers["Location"]
    issuer = _issuer(app)
    assert issuer.csd_number != before and issuer.csd_certificate == cer
    assert issuer.csd_key_encrypted != key and key not in issuer.csd_key_encrypted
    assert PASSWORD.encode() not in issuer.csd_password_encrypted
    with app.app_context():
        assert issuer_signer(issuer).certificate_number == issuer.csd_number
    page = signed_in.get("/admin/emisor?guardado=csd").get_data(as_text=True)
    assert "Certificado (CSD) guardado." in page
    assert issuer.csd_number in page and RFC in page
    assert issuer.csd_valid_to.strftime("%Y-%m-%d") in page
    assert PASSWORD not in page
    for secret in (key, issuer.csd_key_encrypted, issuer.csd_password_encrypted):
        assert secret.decode("latin-1") not in page
    assert "vence el" not in page  # four years ahead: no warning


def test_dialog_for_htmx(signed_in):
    fragment = signed_in.get("/admin/emisor/csd", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and 'id="modal-title"' in text and "<html" not in text
    page = signed_in.get("/admin/emisor/csd").get_data(as_text=True)
    assert "<html" in page and 'enctype="multipart/form-data"' in page
    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    done = _post(signed_in, cer, key, htmx=True)
    assert done.status_code == 204 and "/admin/emisor" in done.headers["HX-Redirect"]
    bad = _post(signed_in, cer, key, "mala", htmx=True)
    assert bad.status_code == 422 and "<html" not in bad.get_data(as_text=True)


def _refused(app, client, cer, key, password=PASSWORD):
    before = _issuer(app).csd_key_encrypted
    response = _post(client, cer, key, password)
    assert response.status_code == 422
    assert _issuer(app).csd_key_encrypted == before  # nothing stored
    return response.get_data(as_text=True)


def test_expired_csd_refused_with_dates(app, signed_in):
    past = datetime.now(UTC) - timedelta(days=3 * 365)
    cer, key = make_test_csd(RFC, NAME, PASSWORD, now=past, years=2)
    text = _refused(app, signed_in, cer, key)
    assert "venció el" in text and 'id="csd_cer-error"' in text
    assert (past - timedelta(days=1)).strftime("%Y-%m-%d") in text  # vigente desde


def test_not_yet_valid_csd_refused(app, signed_in):
    future = datetime.now(UTC) + timedelta(days=20)
    cer, key = make_test_csd(RFC, NAME, PASSWORD, now=future)
    text = _refused(app, signed_in, cer, key)
    assert "será vigente a partir del" in text
    assert (future - timedelta(days=1)).strftime("%Y-%m-%d") in text


def test_fiel_refused(app, signed_in):
    cer, key = make_test_csd(RFC, NAME, PASSWORD, fiel=True)
    text = _refused(app, signed_in, cer, key)
    assert "e.firma (FIEL)" in text and 'id="csd_cer-error"' in text


def test_other_rfc_refused(app, signed_in):
    cer, key = make_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE", PASSWORD)
    text = _refused(app, signed_in, cer, key)
    assert "es del RFC EKU9003173C9, no del emisor (TDG150312K46)" in text


def test_key_of_another_certificate_refused(app, signed_in):
    cer, _key = make_test_csd(RFC, NAME, PASSWORD)
    _cer, key = make_test_csd(RFC, NAME, PASSWORD)
    text = _refused(app, signed_in, cer, key)
    assert "no corresponde al certificado" in text and 'id="csd_key-error"' in text


def test_wrong_password_has_its_own_message(app, signed_in):
    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    text = _refused(app, signed_in, cer, key, "otra-clave")
    assert "La contraseña no abre esta llave privada" in text and 'id="csd_password-error"' in text


@pytest.mark.parametrize("which", ["cer", "key"])
def test_garbage_files_refused(app, signed_in, which):
    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    garbage = b"\x00garbage\xff" * 50
    if which == "cer":
        text = _refused(app, signed_in, garbage, key)
        assert "no es un certificado (.cer) válido" in text and 'id="csd_cer-error"' in text
    else:
        text = _refused(app, signed_in, cer, garbage)
        assert "no es una llave privada (.key)" in text and 'id="csd_key-error"' in text


def test_swapped_files_refused(app, signed_in):
    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    text = _refused(app, signed_in, key, cer)
    assert 'id="csd_cer-error"' in text


def test_missing_fields(app, signed_in):
    response = signed_in.post(
        "/admin/emisor/csd", data={"password": ""}, content_type="multipart/form-data"
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Elija el archivo .cer" in text and "Elija el archivo .key" in text
    assert "Escriba la contraseña" in text


def test_upload_too_large(app, signed_in):
    response = _post(signed_in, b"x" * 300 * 1024, b"y")
    assert response.status_code == 413
    assert "Archivo demasiado grande" in response.get_data(as_text=True)


def test_expiry_warning_on_settings_page(app, signed_in):
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        issuer.csd_valid_to = datetime.now(UTC) + timedelta(days=10, hours=1)
        db.session.commit()
    page = signed_in.get("/admin/emisor").get_data(as_text=True)
    assert "El CSD vence el" in page and "(en 10 días)" in page
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        issuer.csd_valid_to = datetime.now(UTC) - timedelta(days=1)
        db.session.commit()
    assert "El CSD venció el" in signed_in.get("/admin/emisor").get_data(as_text=True)


def test_upload_close_to_expiry_is_accepted_and_warned(app, signed_in):
    now = datetime.now(UTC)
    cer, key = make_test_csd(RFC, NAME, PASSWORD, now=now - timedelta(days=365 - 5), years=1)
    assert _post(signed_in, cer, key).status_code == 303
    assert "El CSD vence el" in signed_in.get("/admin/emisor").get_data(as_text=True)


def test_other_admin_uploads_for_their_own_issuer(app, client, staff, admin_login):
    admin_login(client, staff["other_admin"])
    demo_before = _issuer(app).csd_number
    cer, key = make_test_csd(RFC, NAME, PASSWORD)  # demo's RFC: not theirs
    response = _post(client, cer, key)
    assert response.status_code == 422 and "no del emisor (EKU9003173C9)" in response.get_data(
        as_text=True
    )
    cer, key = make_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE", PASSWORD)
    assert _post(client, cer, key).status_code == 303
    assert _issuer(app).csd_number == demo_before


def test_check_csd_codes():
    now = datetime.now(UTC)
    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    signer, info = check_csd(RFC, cer, key, PASSWORD, now=now)
    assert info.rfc == RFC and info.valid_from < now < info.valid_to
    assert not info.expires_soon(now) and info.expires_soon(info.valid_to - timedelta(days=2))
    cases = {
        "password": (cer, key, "x"),
        "key_format": (cer, b"junk"),
        "cer_format": (b"junk", key),
    }
    for code, (c, k, *pw) in cases.items():
        with pytest.raises(CSDError) as caught:
            check_csd(RFC, c, k, pw[0] if pw else PASSWORD, now=now)
        assert caught.value.code == code
    with pytest.raises(CSDError) as caught:
        check_csd(RFC, cer, key, PASSWORD, now=info.valid_to)
    assert caught.value.code == "expired" and caught.value.field == "cer"


@pytest.mark.browser
def test_csd_dialog_in_a_browser(page, live_server, staff):
    from playwright.sync_api import expect

    from webapp.demo.staff import STAFF_PASSWORD

    page.goto(live_server + "/admin/entrar")
    page.get_by_label("Correo electrónico").fill(staff["admin"])
    page.get_by_label("Contraseña", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url("**/admin/")  # signed in (going elsewhere sooner could cut the answer off)
    page.goto(live_server + "/admin/emisor")
    page.get_by_role("link", name="Reemplazar el CSD").click()
    dialog = page.get_by_role("dialog", name="Subir el certificado de sello digital (CSD)")
    expect(dialog).to_be_visible()
    expect(page.locator("#modal.htmx-settling")).to_have_count(0)
    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    dialog.get_by_label("Certificado (.cer)").set_input_files(
        {"name": "csd.cer", "mimeType": "application/octet-stream", "buffer": cer}
    )
    dialog.get_by_label("Llave privada (.key)").set_input_files(
        {"name": "csd.key", "mimeType": "application/octet-stream", "buffer": key}
    )
    dialog.get_by_label("Contraseña de la llave privada").fill("mala")
    dialog.get_by_role("button", name="Subir").click()
    expect(dialog.get_by_text("La contraseña no abre esta llave privada")).to_be_visible()
    dialog.get_by_label("Certificado (.cer)").set_input_files(
        {"name": "csd.cer", "mimeType": "application/octet-stream", "buffer": cer}
    )
    dialog.get_by_label("Llave privada (.key)").set_input_files(
        {"name": "csd.key", "mimeType": "application/octet-stream", "buffer": key}
    )
    dialog.get_by_label("Contraseña de la llave privada").fill(PASSWORD)
    dialog.get_by_role("button", name="Subir").click()
    expect(page.get_by_text("Certificado (CSD) guardado.")).to_be_visible()
    assert [e for e in page.errors if "422" not in e] == []


def test_unencrypted_key_refused(app, signed_in):
    """SAT's .key files are always encrypted; a bare key is not one of them."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        load_der_private_key,
    )

    cer, key = make_test_csd(RFC, NAME, PASSWORD)
    bare = load_der_private_key(key, PASSWORD.encode()).private_bytes(
        Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
    )
    text = _refused(app, signed_in, cer, bare)
    assert "no es una llave privada (.key) del SAT" in text and 'id="csd_key-error"' in text
    with pytest.raises(CSDError, match="not encrypted"):
        check_csd(RFC, cer, bare, PASSWORD)
