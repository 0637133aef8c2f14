"""The app's cookies (session, language, branch, device) and the proxies in front (issue #13,
point 7): HttpOnly and SameSite=Lax always, Secure exactly when the site is https; with
TRUSTED_PROXIES the client's address and scheme come from the proxy's headers, without it
from nobody's."""

from __future__ import annotations

import re

import pytest

from tests.flows import PASSWORD, RFC, verified_account
from webapp.extensions import db
from webapp.i18n import COOKIE as LANGUAGE_COOKIE
from webapp.invoicing.routes import BRANCH_COOKIE
from webapp.security.audit import DEVICE_COOKIE

HSTS = "Strict-Transport-Security"
CLIENT = "203.0.113.7"
OTHER_CLIENT = "203.0.113.8"


def set_cookies(response) -> dict[str, dict[str, str | bool]]:
    """Each cookie the response sets: its attributes, names in lower case (flags are True)."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        name_value, *attributes = (part.strip() for part in header.split(";"))
        attrs: dict[str, str | bool] = {}
        for attribute in attributes:
            key, _, value = attribute.partition("=")
            attrs[key.lower()] = value or True
        cookies[name_value.partition("=")[0]] = attrs
    return cookies


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def cookies_set_by_the_app(make_app, branch_id: int, **config) -> dict[str, dict]:
    """Visit as a customer does: a form page (the session cookie with its CSRF token), the
    language switch, the choice of branch; the Set-Cookie of each cookie, parsed."""
    app = make_app(WTF_CSRF_ENABLED=True, **config)
    client = app.test_client()
    page = client.get("/cuenta/entrar")
    session = set_cookies(page)[app.config["SESSION_COOKIE_NAME"]]
    token = csrf_token(page.get_data(as_text=True))
    language = client.post("/idioma", data={"lang": "en", "next": "/", "csrf_token": token})
    assert language.status_code == 303
    branch = client.post("/facturar/demo/", data={"branch": str(branch_id), "csrf_token": token})
    assert branch.status_code == 200, branch.get_data(as_text=True)[:500]
    with app.app_context():
        verified_account(RFC, "ingrid@example.com")
        db.session.commit()
    signed_in = client.post(
        "/cuenta/entrar", data={"identifier": RFC, "password": PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:500]
    return {
        "session": session,
        "language": set_cookies(language)[LANGUAGE_COOKIE],
        "branch": set_cookies(branch)[BRANCH_COOKIE.format("demo")],
        "device": set_cookies(signed_in)[DEVICE_COOKIE],
    }


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [("http://facturas.example.com", False), ("https://facturas.example.com", True)],
)
def test_cookies_are_httponly_lax_and_secure_exactly_on_https(make_app, demo, base_url, secure):
    cookies = cookies_set_by_the_app(make_app, demo["fresh"][0]["branch_id"], BASE_URL=base_url)
    for name, attrs in cookies.items():
        assert attrs.get("httponly") is True, name
        assert attrs.get("samesite") == "Lax", name
        assert attrs.get("secure", False) is secure, name


@pytest.mark.parametrize(
    ("base_url", "setting", "secure"),
    [("https://facturas.example.com", "0", False), ("http://127.0.0.1:5000", "1", True)],
)
def test_session_cookie_secure_in_the_environment_wins(
    make_app, demo, monkeypatch, base_url, setting, secure
):
    """SESSION_COOKIE_SECURE, when the environment sets it, decides for every cookie."""
    monkeypatch.setenv("SESSION_COOKIE_SECURE", setting)
    cookies = cookies_set_by_the_app(make_app, demo["fresh"][0]["branch_id"], BASE_URL=base_url)
    assert {name: attrs.get("secure", False) for name, attrs in cookies.items()} == {
        "session": secure,
        "language": secure,
        "branch": secure,
        "device": secure,
    }


# --- Proxies ---------------------------------------------------------------------------------


def forwarded(client: str, proto: str | None = "https") -> dict[str, str]:
    """The headers a proxy adds: the address it saw the request come from, and its scheme."""
    return {"X-Forwarded-For": client} | ({"X-Forwarded-Proto": proto} if proto else {})


def test_behind_a_trusted_tls_proxy_hsts_is_sent(make_app):
    client = make_app(TRUSTED_PROXIES=1).test_client()
    assert client.get("/", headers=forwarded(CLIENT)).headers[HSTS].startswith("max-age=")
    assert HSTS not in client.get("/", headers=forwarded(CLIENT, proto="http")).headers
    assert HSTS not in client.get("/", headers=forwarded(CLIENT, proto=None)).headers


def test_without_trusted_proxies_forwarded_headers_are_ignored(make_app):
    app = make_app()
    assert app.config["TRUSTED_PROXIES"] == 0  # the default
    client = app.test_client()
    assert HSTS not in client.get("/", headers=forwarded(CLIENT)).headers


def sign_in_limited(make_app, **config):
    """An app limiting sign-in to 2 attempts per address an hour (per account: far more);
    a function posting a wrong password for a new identifier with the given headers."""
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_SIGNIN_IP="2/hour",
        RATELIMIT_SIGNIN_ACCOUNT="100/hour",
        SECURITY_CAPTCHA_AFTER_FAILURES=0,
        **config,
    )
    client = app.test_client()
    identifiers = iter(["XOJI740919U48", "CACX7605101P8", "EKU9003173C9", "GODE561231GR8"] * 2)

    def attempt(headers: dict) -> int:
        data = {"identifier": next(identifiers), "password": "incorrecta"}
        return client.post("/cuenta/entrar", data=data, headers=headers).status_code

    return attempt


def test_behind_a_trusted_proxy_the_limit_counts_per_client(make_app):
    attempt = sign_in_limited(make_app, TRUSTED_PROXIES=1)
    assert attempt(forwarded(CLIENT)) == 401
    assert attempt(forwarded(CLIENT)) == 401
    assert attempt(forwarded(CLIENT)) == 429
    # What the client wrote itself lies left of what the proxy appended: it changes nothing.
    assert attempt(forwarded(f"{OTHER_CLIENT}, {CLIENT}")) == 429
    # Another client behind the same proxy has a limit of its own.
    assert attempt(forwarded(OTHER_CLIENT)) == 401


def test_without_trusted_proxies_forwarded_for_does_not_dodge_the_limit(make_app):
    attempt = sign_in_limited(make_app)
    assert attempt(forwarded(CLIENT)) == 401
    assert attempt(forwarded(OTHER_CLIENT)) == 401
    assert attempt(forwarded("198.51.100.1")) == 429


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"TRUSTED_PROXIES": -1}, "TRUSTED_PROXIES"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
    ],
)
def test_settings_that_cannot_work_refuse_to_start(make_app, setting, message):
    with pytest.raises(RuntimeError, match=message):
        make_app(**setting)
