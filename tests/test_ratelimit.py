"""Throttling per IP and per account (flask-limiter), answered with the Spanish 429 page."""

from __future__ import annotations


def test_sign_in_is_throttled_per_account(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_SIGNIN_ACCOUNT="3/minute",
        RATELIMIT_SIGNIN_IP="100/minute",
    )
    client = app.test_client()
    for _ in range(3):
        r = client.post("/cuenta/entrar", data={"identifier": "XOJI740919U48", "password": "x"})
        assert r.status_code == 401
    r = client.post("/cuenta/entrar", data={"identifier": "xoji740919u48 ", "password": "x"})
    assert r.status_code == 429
    assert "Demasiados intentos" in r.get_data(as_text=True)
    assert "Retry-After" in r.headers
    # Another account from the same address is still allowed.
    r = client.post("/cuenta/entrar", data={"identifier": "CACX7605101P8", "password": "x"})
    assert r.status_code == 401


def test_sign_in_is_throttled_per_ip(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_SIGNIN_ACCOUNT="100/minute",
        RATELIMIT_SIGNIN_IP="2/minute",
    )
    client = app.test_client()
    for rfc in ("XOJI740919U48", "CACX7605101P8"):
        assert (
            client.post("/cuenta/entrar", data={"identifier": rfc, "password": "x"}).status_code
            == 401
        )
    r = client.post("/cuenta/entrar", data={"identifier": "EKU9003173C9", "password": "x"})
    assert r.status_code == 429
    other = client.post(
        "/cuenta/entrar",
        data={"identifier": "EKU9003173C9", "password": "x"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert other.status_code == 401


def test_recovery_and_registration_are_throttled(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_EMAIL_IP="2/minute")
    client = app.test_client()
    for _ in range(2):
        client.post("/cuenta/recuperar", data={"rfc": "XOJI740919U48", "email": "a@b.mx"})
    assert (
        client.post(
            "/cuenta/recuperar", data={"rfc": "XOJI740919U48", "email": "a@b.mx"}
        ).status_code
        == 429
    )
