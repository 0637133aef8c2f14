"""The base pages: Spanish home, health check, headers, errors, CSRF."""

from __future__ import annotations

import re

import pytest
from flask import abort


def test_home_is_spanish(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="es-MX">' in html
    assert "Factura tu ticket" in html


def test_english_on_request(client):
    response = client.post("/idioma", data={"lang": "en", "next": "/"})
    assert response.status_code == 303
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Invoice your receipt" in html


def test_language_switch_does_not_redirect_off_site(client):
    response = client.post("/idioma", data={"lang": "en", "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_healthz_checks_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_reports_a_broken_database(make_app):
    broken = make_app(DATABASE_URL="sqlite:////nonexistent/dir/db.sqlite")
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "error"


def test_security_headers(client):
    headers = client.get("/").headers
    csp = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


def test_fragments_carry_only_what_applies_to_them(client):
    """An htmx fragment is swapped into a page under the page's policies: no CSP of its own,
    and caches told apart from the full page; a history restore is a document again."""
    fragment = client.get("/", headers={"HX-Request": "true"}).headers
    assert "Content-Security-Policy" not in fragment and "X-Frame-Options" not in fragment
    assert fragment["X-Content-Type-Options"] == "nosniff" and "HX-Request" in fragment["Vary"]
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "Content-Security-Policy" in client.get("/", headers=restore).headers


def test_no_inline_script_or_style(client):
    html = client.get("/").get_data(as_text=True)
    assert "<style" not in html
    assert " style=" not in html
    for script in re.findall(r"<script[^>]*>(.*?)</script>", html, re.S):
        assert script.strip() == ""
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_htmx_config_and_csrf_header(client):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<script src="/static/htmx-2\.0\.\d+\.min\.js\?v=[0-9a-f]{10}"', html)
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', html).group(1)
    assert '"allowEval":false' in config and '"includeIndicatorStyles":false' in config
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[^"]+"\}\'>', html)


@pytest.mark.parametrize(
    ("code", "title"),
    [
        (400, "Solicitud no válida"),
        (403, "Acceso denegado"),
        (404, "Página no encontrada"),
        (405, "Método no permitido"),
        (413, "Archivo demasiado grande"),
        (429, "Demasiados intentos"),
        (500, "Error del servidor"),
    ],
)
def test_error_pages_in_spanish(make_app, code, title):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom():
        if code == 500:
            raise RuntimeError("unexpected")
        abort(code)

    client = app.test_client()
    page = client.get("/boom")
    assert page.status_code == code
    html = page.get_data(as_text=True)
    assert html.startswith("<!doctype html>") and title in html

    fragment = client.get("/boom", headers={"HX-Request": "true"})
    assert fragment.status_code == code
    body = fragment.get_data(as_text=True)
    assert title in body and "<html" not in body
    assert fragment.headers["HX-Retarget"] == "#avisos"


def test_unknown_url_is_a_spanish_404(client):
    response = client.get("/no-existe")
    assert response.status_code == 404
    assert "Página no encontrada" in response.get_data(as_text=True)


def test_wrong_method_is_405(client):
    response = client.delete("/")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_forms_refuse_a_post_without_csrf_token(make_app):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    response = client.post("/idioma", data={"lang": "en"})
    assert response.status_code == 400
    assert "La sesión del formulario caducó" in response.get_data(as_text=True)


def test_htmx_header_token_is_accepted(make_app):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    html = client.get("/").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)
    response = client.post(
        "/idioma",
        data={"lang": "en", "next": "/"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status_code == 303


def test_unknown_pac_refuses_to_start(make_app):
    with pytest.raises(RuntimeError, match="PAC='nope' is unknown"):
        make_app(PAC="nope")


def test_secret_key_is_generated_once_and_reused(tmp_path, monkeypatch):
    from webapp.config import from_environment

    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = from_environment(tmp_path)["SECRET_KEY"]
    assert len(first) >= 40
    assert from_environment(tmp_path)["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
