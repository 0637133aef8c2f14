"""A limit on every mail and every guess (issue #13, point 8): registration through htmx,
the "ya está registrado" notice, invoice emails, ticket checks with the captcha after repeated
misses, and how long staff recovery and invitation links last."""

from __future__ import annotations

import re

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select

from tests.flows import (
    EMAIL,
    PASSWORD,
    RFC,
    enrol_link,
    field,
    registered_account,
    sign_in,
    solved_captcha,
    stamp,
    start,
    ticket_data,
    verified_account,
)
from webapp.extensions import db
from webapp.kiosk.web import COOKIE
from webapp.models import Branch, MailMessage

HTMX = {"HX-Request": "true"}
OTHER_IP = {"REMOTE_ADDR": "10.0.0.9"}
TOO_MANY = "Demasiados intentos"
INVOICE_FULL = "Esta factura ya se envió por correo muchas veces en poco tiempo"
SENDER_FULL = "Se han enviado muchos correos desde aquí en poco tiempo"
CAPTCHA_MESSAGE = "Escriba los números de la imagen o del audio tal como aparecen."
NOT_FOUND = "No encontramos ese número de ticket"
GENEROUS = "1000/minute"


@pytest.fixture
def app(make_app):
    """Rate limiting on (the suite's default is off), every limit generous; a test lowers the
    one it is about."""
    return make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_SIGNIN_IP=GENEROUS,
        RATELIMIT_SIGNIN_ACCOUNT=GENEROUS,
        RATELIMIT_EMAIL_IP=GENEROUS,
        RATELIMIT_INVOICE_MAIL=GENEROUS,
        RATELIMIT_INVOICE_MAIL_SESSION=GENEROUS,
        RATELIMIT_INVOICE_MAIL_IP=GENEROUS,
        RATELIMIT_TICKET_IP=GENEROUS,
        RATELIMIT_TICKET_BRANCH=GENEROUS,
    )


def _html(response) -> str:
    return response.get_data(as_text=True)


def _mail_count(app, **where) -> int:
    query = select(func.count()).select_from(MailMessage)
    for column, value in where.items():
        query = query.where(getattr(MailMessage, column) == value)
    with app.app_context():
        return db.session.scalar(query)


def _clock_ahead(seconds: int):
    """itsdangerous' clock moved on by `seconds` (links expire)."""
    real = TimestampSigner.get_timestamp
    return lambda self: real(self) + seconds


# --- Registration -----------------------------------------------------------------------


def _register(client, email, headers=None, **environ):
    return client.post(
        "/cuenta/registro",
        data={"rfc": RFC, "email": email, "email_confirm": email},
        headers=headers or {},
        environ_base=environ,
    )


def test_a_registration_sent_through_htmx_counts_like_a_plain_one(app, client):
    app.config["RATELIMIT_EMAIL_IP"] = "2/minute"
    # The inline checks of the fields send nothing and are not counted.
    for _ in range(3):
        inline = client.post(
            "/cuenta/registro",
            data={"rfc": RFC, "email": "a@example.com", "email_confirm": ""},
            headers={**HTMX, "HX-Target": "campo-email"},
        )
        assert inline.status_code == 200
    for n in range(2):
        r = _register(client, f"persona{n}@example.com", headers=HTMX)
        assert r.status_code == 303
    refused = _register(client, "persona9@example.com", headers=HTMX)
    assert refused.status_code == 429
    assert TOO_MANY in _html(refused) and "<html" not in _html(refused)  # the notice fragment
    assert _mail_count(app) == 2
    # The plain form from this address is refused too: the same count.
    assert _register(client, "persona8@example.com").status_code == 429


def test_already_registered_is_told_once_per_address_whatever_the_ip(app, client):
    registered_account(app)
    first = _register(client, EMAIL)
    again = _register(app.test_client(), EMAIL, **OTHER_IP)
    # The same answer as for a new address, each time.
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    subject = "Autofactura: su correo ya está registrado"
    assert _mail_count(app, subject=subject) == 1
    # Another complete account is told, once too.
    other = "otra.persona@example.com"
    with app.app_context():
        verified_account("CACX7605101P8", other)
    for _ in range(2):
        assert _register(client, other).status_code == 303
    assert _mail_count(app, subject=subject) == 2


# --- Invoice emails -----------------------------------------------------------------------


def _send(client, public_id, addresses, **environ):
    return client.post(
        f"/facturar/factura/{public_id}/correo",
        data={"email": ", ".join(addresses)},
        environ_base=environ,
    )


def test_enviar_por_correo_limits_the_addresses_of_one_request(app, client, demo):
    app.config["INVOICE_MAIL_MAX_RECIPIENTS"] = 2
    public_id = stamp(client, demo["fresh"][0])
    before = _mail_count(app)
    r = _send(client, public_id, ["a@example.com", "b@example.com", "c@example.com"])
    assert r.status_code == 422
    assert "Escriba como máximo 2 correos" in field(_html(r), "email")
    assert _mail_count(app) == before
    assert _send(client, public_id, ["a@example.com", "b@example.com"]).status_code == 303
    assert _mail_count(app) == before + 1


def test_enviar_por_correo_limits_the_emails_of_one_invoice(app, client, demo):
    app.config["RATELIMIT_INVOICE_MAIL"] = "3/hour"
    public_id = stamp(client, demo["fresh"][0])
    before = _mail_count(app)
    assert _send(client, public_id, ["a@example.com", "b@example.com"]).status_code == 303
    refused = _send(client, public_id, ["c@example.com", "d@example.com"])
    assert refused.status_code == 429
    assert INVOICE_FULL in field(_html(refused), "email")
    assert "Su factura está lista" in _html(refused)  # the page, with the message at the field
    assert _mail_count(app) == before + 1
    # What still fits is sent (each address counts one).
    assert _send(client, public_id, ["c@example.com"]).status_code == 303
    assert _send(client, public_id, ["e@example.com"]).status_code == 429
    assert _mail_count(app) == before + 2


def test_enviar_por_correo_limits_each_session_and_each_ip(app, demo):
    app.config["RATELIMIT_INVOICE_MAIL_SESSION"] = "3/hour"
    app.config["RATELIMIT_INVOICE_MAIL_IP"] = "4/hour"
    first, second, third = demo["fresh"]
    one = app.test_client()
    a, b = stamp(one, first), stamp(one, second)
    assert _send(one, a, ["x@example.com", "y@example.com"]).status_code == 303
    # Another invoice of the same session: the session's count goes on.
    refused = _send(one, b, ["x@example.com", "y@example.com"])
    assert refused.status_code == 429 and SENDER_FULL in field(_html(refused), "email")
    assert _send(one, b, ["x@example.com"]).status_code == 303  # 3 of the session's 3
    # Another session on the same address: the address's count goes on (3 of 4).
    two = app.test_client()
    c = stamp(two, third)
    refused = _send(two, c, ["x@example.com", "y@example.com"])
    assert refused.status_code == 429 and SENDER_FULL in field(_html(refused), "email")
    assert _send(two, c, ["x@example.com"]).status_code == 303
    assert _send(two, c, ["y@example.com"]).status_code == 429
    # The same session from another address still has room.
    assert _send(two, c, ["y@example.com"], **OTHER_IP).status_code == 303


def test_reenviar_in_mis_facturas_answers_429_next_to_the_field(app, client, stamped):
    app.config["RATELIMIT_INVOICE_MAIL"] = "2/hour"
    url = f"/facturas/{stamped[0]}/reenviar"
    r = client.post(url, data={"email": "a@example.com, b@example.com"}, headers=HTMX)
    assert r.status_code == 200 and "Enviamos la factura por correo" in _html(r)
    before = _mail_count(app)
    fragment = client.post(url, data={"email": "c@example.com"}, headers=HTMX)
    assert fragment.status_code == 429
    html = _html(fragment)
    assert "<html" not in html and 'id="modal-title"' in html  # the dialog, not a page
    assert INVOICE_FULL in field(html, "email")
    page = client.post(url, data={"email": "c@example.com"})
    assert page.status_code == 429 and "<html" in _html(page)
    assert INVOICE_FULL in field(_html(page), "email")
    assert _mail_count(app) == before
    # Another invoice of the account still goes.
    r = client.post(f"/facturas/{stamped[1]}/reenviar", data={"email": "c@example.com"})
    assert r.status_code == 303


def test_reenviar_in_mis_facturas_counts_per_account(app, client, stamped):
    app.config["RATELIMIT_INVOICE_MAIL_SESSION"] = "2/hour"
    for public_id in stamped[:2]:
        r = client.post(f"/facturas/{public_id}/reenviar", data={"email": "a@example.com"})
        assert r.status_code == 303
    # The same account in another browser (and from another address): the count goes on.
    other = app.test_client()
    assert sign_in(other, RFC, PASSWORD).status_code == 303
    r = other.post(
        f"/facturas/{stamped[2]}/reenviar",
        data={"email": "a@example.com"},
        environ_base=OTHER_IP,
    )
    assert r.status_code == 429 and SENDER_FULL in field(_html(r), "email")


def test_reenviar_la_factura_of_a_ticket_is_limited_too(app, client, demo):
    app.config["RATELIMIT_INVOICE_MAIL_IP"] = "1/hour"
    first, second = demo["fresh"][:2]
    stamp(client, first)
    stamp(client, second)
    other = app.test_client()
    key = start(other, first["branch_id"], rfc="CACX7605101P8")
    before = _mail_count(app)
    r = other.post("/facturar/demo/reenviar", data=ticket_data(first, key))
    assert r.status_code == 200 and _mail_count(app) == before + 1
    refused = other.post("/facturar/demo/reenviar", data=ticket_data(second, key))
    assert refused.status_code == 429
    assert SENDER_FULL in field(_html(refused), "ticket_number")
    assert _mail_count(app) == before + 1


# --- Ticket checks ----------------------------------------------------------------------


def _check(client, name, data, **environ):
    """The inline check of the ticket form's field `name`."""
    return client.post(
        f"/facturar/demo/ticket/campo/{name}",
        data=data,
        headers={**HTMX, "HX-Target": f"campo-{name}"},
        environ_base=environ,
    )


def _branch_id(app, code: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Branch.id).where(Branch.code == code))


def test_ticket_checks_are_limited_per_ip(app, client, demo):
    app.config["RATELIMIT_TICKET_IP"] = "3/minute"
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    data = ticket_data(t, key, action="add")
    assert _check(client, "ticket_number", data).status_code == 200
    assert _check(client, "nombre", data).status_code == 200  # not a ticket check: not counted
    assert client.post("/facturar/demo/ticket", data=data).status_code == 200
    assert _check(client, "total", data).status_code == 200
    refused = _check(client, "order_number", data)
    assert refused.status_code == 429 and TOO_MANY in _html(refused)
    assert client.post("/facturar/demo/ticket", data=data).status_code == 429
    assert client.post("/facturar/demo/reenviar", data=data).status_code == 429
    # Someone else, elsewhere, is not held back.
    other = app.test_client()
    key = start(other, t["branch_id"], rfc="CACX7605101P8")
    r = _check(other, "ticket_number", ticket_data(t, key), **OTHER_IP)
    assert r.status_code == 200


def test_ticket_checks_are_limited_per_branch(app, demo):
    app.config["RATELIMIT_TICKET_BRANCH"] = "2/minute"
    t = demo["fresh"][0]  # a CENTRO ticket
    for n, ip in enumerate(("10.0.0.1", "10.0.0.2")):
        client = app.test_client()
        key = start(client, t["branch_id"])
        assert _check(client, "ticket_number", ticket_data(t, key), REMOTE_ADDR=ip).status_code == (
            200
        ), n
    late = app.test_client()
    key = start(late, t["branch_id"])
    r = _check(late, "ticket_number", ticket_data(t, key), REMOTE_ADDR="10.0.0.3")
    assert r.status_code == 429
    # Another branch's tickets are checked as usual.
    key = start(late, _branch_id(app, "POLANCO"))
    r = _check(late, "ticket_number", ticket_data(t, key), REMOTE_ADDR="10.0.0.3")
    assert r.status_code == 200


def test_a_kiosk_is_limited_per_terminal_not_per_shared_address(app, demo):
    """A branch's kiosks reach the site from one public address: each terminal has its own
    count, and the kiosks do not use up the count of that address."""
    app.config["RATELIMIT_TICKET_IP"] = "2/minute"
    t = demo["fresh"][0]
    kiosks = []
    for name in ("Caja 1", "Caja 2"):
        kiosk = app.test_client()
        r = kiosk.post(enrol_link(app, "CENTRO", name=name))
        assert r.status_code == 303 and kiosk.get_cookie(COOKIE) is not None
        r = kiosk.post("/facturar/demo/rfc", data={"rfc": RFC})
        assert r.status_code == 200 and "Datos del ticket" in _html(r)
        kiosks.append(kiosk)
    data = ticket_data(t, "k")
    for _ in range(2):
        assert _check(kiosks[0], "ticket_number", data).status_code == 200
    assert _check(kiosks[0], "ticket_number", data).status_code == 429
    assert _check(kiosks[1], "ticket_number", data).status_code == 200
    phone = app.test_client()  # a customer's phone on the branch's network
    key = start(phone, t["branch_id"])
    assert _check(phone, "ticket_number", ticket_data(t, key)).status_code == 200


def _has_captcha(html: str) -> bool:
    return 'name="captcha_token"' in html


def test_captcha_after_repeated_misses(app, client, demo):
    app.config["TICKET_CAPTCHA_AFTER_MISSES"] = 2
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    wrong = ticket_data(t, key, action="add", ticket_number="99999901")
    for _ in range(2):  # the same miss again is not counted again
        r = client.post("/facturar/demo/ticket", data=wrong)
        assert r.status_code == 422 and NOT_FOUND in field(_html(r), "ticket_number")
        assert not _has_captcha(_html(r))
    r = client.post("/facturar/demo/ticket", data={**wrong, "total": "1.00"})
    assert r.status_code == 422 and _has_captcha(_html(r))
    # Now a ticket is looked up only with the captcha solved: without it, nothing is said
    # about the ticket, right or wrong.
    right = ticket_data(t, key, action="add")
    refused = client.post("/facturar/demo/ticket", data=right)
    html = _html(refused)
    assert refused.status_code == 422 and CAPTCHA_MESSAGE in html
    assert "Tickets en esta factura" not in html and NOT_FOUND not in html
    inline = _check(client, "ticket_number", wrong)
    assert inline.status_code == 200 and NOT_FOUND not in _html(inline)
    # Solved: the ticket is added, and the count starts again.
    r = client.post("/facturar/demo/ticket", data={**right, **solved_captcha(app, html)})
    assert r.status_code == 200 and "Tickets en esta factura" in _html(r)
    assert not _has_captcha(_html(r))


def test_the_inline_check_that_makes_the_captcha_due_shows_it(app, client, demo):
    app.config["TICKET_CAPTCHA_AFTER_MISSES"] = 1
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    assert not _has_captcha(_html(client.get("/facturar/demo/ticket")))
    r = _check(client, "total", ticket_data(t, key, total="1.00"))
    html = _html(r)
    assert r.status_code == 200 and "El total no coincide" in html
    assert re.search(r'id="verificacion-ticket" hx-swap-oob="true"', html) and _has_captcha(html)
    assert _has_captcha(_html(client.get("/facturar/demo/ticket")))
    # "Reenviar la factura" looks a ticket up too: it asks for the captcha as well.
    r = client.post("/facturar/demo/reenviar", data=ticket_data(t, key))
    assert r.status_code == 422 and CAPTCHA_MESSAGE in _html(r)


def test_the_kiosk_flow_still_invoices_after_a_miss(app, demo):
    app.config["TICKET_CAPTCHA_AFTER_MISSES"] = 1
    kiosk = app.test_client()
    assert kiosk.post(enrol_link(app, "CENTRO")).status_code == 303
    page = _html(kiosk.post("/facturar/demo/rfc", data={"rfc": RFC}))  # the ticket step
    key = re.search(r'name="key" type="hidden" value="([^"]+)"', page).group(1)
    t = demo["fresh"][0]
    r = kiosk.post("/facturar/demo/ticket", data=ticket_data(t, key, ticket_number="99999901"))
    assert r.status_code == 422 and _has_captcha(_html(r))
    r = kiosk.post(
        "/facturar/demo/ticket", data={**ticket_data(t, key), **solved_captcha(app, _html(r))}
    )
    assert r.status_code == 303 and "/facturar/factura/" in r.headers["Location"]
    # The next customer starts with no count.
    kiosk.post("/kiosco/terminar")
    r = kiosk.post("/facturar/demo/rfc", data={"rfc": RFC})
    assert r.status_code == 200 and not _has_captcha(_html(r))
    assert not _has_captcha(_html(kiosk.get("/facturar/demo/ticket")))


# --- Staff links --------------------------------------------------------------------------


def _staff_bodies(app, to: str) -> list[str]:
    with app.app_context():
        return db.session.scalars(
            select(MailMessage.body_text).where(MailMessage.to_addrs == to).order_by(MailMessage.id)
        ).all()


def _staff_link(app, to: str) -> str:
    bodies = _staff_bodies(app, to)
    links = [m for body in bodies for m in re.findall(r"http://localhost(/admin/clave/\S+)", body)]
    assert links, f"no link to {to} in the outbox"
    return links[-1]


def test_a_staff_recovery_link_lasts_reset_link_minutes(app, client, staff, monkeypatch):
    minutes = app.config["SECURITY_POLICY"].reset_link_minutes
    assert client.post("/admin/recuperar", data={"email": staff["admin"]}).status_code == 200
    link = _staff_link(app, staff["admin"])
    assert f"El enlace vence en {minutes} minutos" in _staff_bodies(app, staff["admin"])[-1]
    assert client.get(link).status_code == 200
    monkeypatch.setattr(TimestampSigner, "get_timestamp", _clock_ahead(minutes * 60 + 60))
    assert client.get(link).status_code == 410


def test_a_staff_invitation_lasts_its_own_hours(app, client, staff, admin_login, monkeypatch):
    app.config["STAFF_INVITATION_HOURS"] = 5
    admin_login(client, staff["admin"])
    r = client.post(
        "/admin/personal/nuevo",
        data={"email": "nueva@example.com", "name": "Nueva", "role": "issuer_admin", "branch": ""},
    )
    assert r.status_code == 303
    link = _staff_link(app, "nueva@example.com")
    assert "El enlace vence en 5 horas" in _staff_bodies(app, "nueva@example.com")[-1]
    invited = app.test_client()
    minutes = app.config["SECURITY_POLICY"].reset_link_minutes
    monkeypatch.setattr(TimestampSigner, "get_timestamp", _clock_ahead(minutes * 60 + 60))
    assert invited.get(link).status_code == 200  # past a recovery link's life, still good
    monkeypatch.setattr(TimestampSigner, "get_timestamp", _clock_ahead(5 * 3600 + 60))
    assert invited.get(link).status_code == 410


def test_parallel_requests_never_get_past_a_limit(app):
    """Twenty sends at once against a limit of five: five go through, whatever the order in
    which the threads test and count."""
    import threading

    from webapp import ratelimits

    app.config["RATELIMIT_INVOICE_MAIL"] = "5/hour"
    start = threading.Barrier(20)
    passed = []

    def send():
        with app.test_request_context():
            start.wait()
            limit = ratelimits.Limit("RATELIMIT_INVOICE_MAIL", "invoice-mail", "parallel")
            if ratelimits.take(limit) is None:
                passed.append(1)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == 5
