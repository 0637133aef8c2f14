"""Back-office sign-in: roles, scoping, locks, recovery, and separation from customers."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.flows import without_tokens
from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.models import AuditEvent, MailMessage, StaffMember


def test_admin_pages_need_staff(client, staff):
    response = client.get("/admin/")
    assert response.status_code == 303
    assert "/admin/entrar" in response.headers["Location"]


def test_issuer_admin_signs_in_and_sees_own_issuer(client, staff, admin_login):
    admin_login(client, staff["admin"])
    page = client.get("/admin/").get_data(as_text=True)
    assert "TIENDAS DEMO LA GAVIOTA" in page
    assert "ESCUELA KEMPER URGATE" not in page
    assert "Timbradas hoy" in page


def test_wrong_password_gives_one_answer(staff, app):
    for email in (staff["admin"], "nadie@example.com"):
        response = app.test_client().post(
            "/admin/entrar", data={"email": email, "password": "mala"}
        )
        assert response.status_code == 401
        assert "El correo o la contraseña no son correctos." in response.get_data(as_text=True)


def test_customer_session_is_not_staff(client, staff):
    """A customer's sign-in says nothing to the back office."""
    with client.session_transaction() as session:
        session["_user_id"] = "1:1"
    assert client.get("/admin/").status_code == 303


def test_operator_picks_an_issuer(client, staff, admin_login):
    admin_login(client, staff["operator"])
    response = client.get("/admin/")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/emisores")
    listing = client.get("/admin/emisores").get_data(as_text=True)
    assert "ESCUELA KEMPER URGATE" in listing and "TIENDAS DEMO LA GAVIOTA" in listing
    chosen = client.post("/admin/emisores", data={"issuer": staff["other_issuer_id"]})
    assert chosen.status_code == 303
    assert "ESCUELA KEMPER URGATE" in client.get("/admin/").get_data(as_text=True)


def test_only_the_operator_picks_issuers(client, staff, admin_login):
    admin_login(client, staff["other_admin"])
    assert client.get("/admin/emisores").status_code == 403
    assert client.post("/admin/emisores", data={"issuer": staff["issuer_id"]}).status_code == 403
    page = client.get("/admin/").get_data(as_text=True)
    assert "ESCUELA KEMPER URGATE" in page and "TIENDAS DEMO" not in page


def test_sign_out(client, staff, admin_login):
    admin_login(client, staff["branch"])
    assert client.get("/admin/").status_code == 200
    client.post("/admin/salir")
    assert client.get("/admin/").status_code == 303


def test_lock_after_failures_seed_preset(make_app, demo, staff):
    app = make_app(SECURITY_PRESET="seed", CAPTCHA="off")
    client = app.test_client()
    for _ in range(3):
        client.post("/admin/entrar", data={"email": staff["admin"], "password": "mala"})
    response = client.post(
        "/admin/entrar", data={"email": staff["admin"], "password": STAFF_PASSWORD}
    )
    assert response.status_code == 423
    with app.app_context():
        member = db.session.scalar(select(StaffMember).where(StaffMember.email == staff["admin"]))
        events = db.session.scalars(
            select(AuditEvent.event).where(AuditEvent.staff_id == member.id)
        ).all()
        assert "locked" in events


def _mail_link(app, pattern: str) -> str:
    with app.app_context():
        bodies = db.session.scalars(select(MailMessage.body_text).order_by(MailMessage.id)).all()
    links = [m for body in bodies for m in re.findall(pattern, body)]
    assert links, "no link in the outbox"
    return links[-1]


def test_recovery_same_answer_and_single_use_link(app, client, staff):
    known = client.post("/admin/recuperar", data={"email": staff["admin"]})
    unknown = client.post("/admin/recuperar", data={"email": "nadie@example.com"})
    assert known.status_code == unknown.status_code == 200
    # The same page either way, but for the address typed and the CSRF tokens (signed with
    # the time: two answers a second apart differ in them).
    assert without_tokens(known.get_data(as_text=True)).replace(staff["admin"], "X") == (
        without_tokens(unknown.get_data(as_text=True)).replace("nadie@example.com", "X")
    )
    link = _mail_link(app, r"http://localhost(/admin/clave/[\w.-]+)")
    new = "otra frase bastante larga 2026"
    response = client.post(link, data={"password": new, "password_confirm": new})
    assert response.status_code == 303
    assert client.get("/admin/").status_code == 200
    again = client.post(link, data={"password": new + "x", "password_confirm": new + "x"})
    assert again.status_code == 410


def test_a_disabled_member_is_told_no_like_anyone(app, client, staff):
    with app.app_context():
        member = db.session.scalar(select(StaffMember).where(StaffMember.email == staff["admin"]))
        member.active = False
        db.session.commit()
    response = client.post(
        "/admin/entrar", data={"email": staff["admin"], "password": STAFF_PASSWORD}
    )
    assert response.status_code == 401
    assert "El correo o la contraseña no son correctos." in response.get_data(as_text=True)
