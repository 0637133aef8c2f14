"""Back office: the issuer's staff (Personal): list, invite, disable/enable, scoped."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.models import Branch, Issuer, MailMessage, StaffMember, StaffRole

HTMX = {"HX-Request": "true"}


def _page(response) -> str:
    return response.get_data(as_text=True)


def _member(app, email: str) -> StaffMember | None:
    with app.app_context():
        return db.session.scalar(select(StaffMember).where(StaffMember.email == email))


def _branch_id(app, code: str, slug: str = "demo") -> int:
    with app.app_context():
        return db.session.scalar(
            select(Branch.id).join(Issuer).where(Issuer.slug == slug, Branch.code == code)
        )


def _mails(app, to: str) -> list[MailMessage]:
    with app.app_context():
        return db.session.scalars(select(MailMessage).where(MailMessage.to_addrs == to)).all()


@pytest.fixture
def admin(client, staff, admin_login):
    admin_login(client, staff["admin"])
    return client


def test_list_shows_the_issuers_staff(app, admin, staff):
    response = admin.get("/admin/personal")
    page = _page(response)
    assert response.status_code == 200
    assert staff["admin"] in page and staff["branch"] in page
    assert staff["other_admin"] not in page and staff["operator"] not in page
    assert "Administrador del emisor" in page and "Personal de sucursal" in page
    assert "CENTRO" in page  # the branch staff's branch
    assert "(usted)" in page  # no button to disable oneself
    assert 'href="/admin/personal"' in page  # in the menu


def test_invite_branch_staff_sends_the_password_email(app, admin, client):
    polanco = _branch_id(app, "POLANCO")
    response = admin.post(
        "/admin/personal/nuevo",
        data={
            "email": "Nueva.Cajera@Example.com ",
            "name": "Nueva Cajera",
            "role": "branch_staff",
            "branch": str(polanco),
        },
    )
    assert response.status_code == 303
    assert "Invitación enviada" in _page(admin.get(response.headers["Location"]))
    member = _member(app, "nueva.cajera@example.com")
    assert member.role is StaffRole.BRANCH_STAFF and member.branch_id == polanco
    assert member.password_hash is None and member.active
    listing = _page(admin.get("/admin/personal"))
    assert "nueva.cajera@example.com" in listing and "invitado" in listing

    (mail,) = _mails(app, "nueva.cajera@example.com")
    assert "contraseña" in mail.subject
    link = re.search(r"http://localhost(/admin/clave/\S+)", mail.body_text).group(1)
    invited = app.test_client()
    assert invited.get(link).status_code == 200
    chosen = invited.post(
        link,
        data={
            "password": "una frase larga y segura",
            "password_confirm": "una frase larga y segura",
        },
    )
    assert chosen.status_code == 303
    # branch staff: their branch's pages, not these
    assert invited.get("/admin/").status_code == 200
    assert invited.get("/admin/personal").status_code == 403


def test_invite_an_issuer_admin_in_the_dialog(app, admin, staff):
    fragment = admin.get("/admin/personal/nuevo", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in _page(fragment)
    assert 'id="modal-title"' in _page(fragment)
    response = admin.post(
        "/admin/personal/nuevo",
        data={"email": "socia@example.com", "name": "Socia", "role": "issuer_admin", "branch": ""},
        headers=HTMX,
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith(
        "/admin/personal"
    )
    member = _member(app, "socia@example.com")
    assert member.role is StaffRole.ISSUER_ADMIN and member.branch_id is None
    assert member.issuer_id == staff["issuer_id"]
    assert len(_mails(app, "socia@example.com")) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "", "role": "issuer_admin"}, "Escriba su correo electrónico."),
        ({"email": "no-es-correo", "role": "issuer_admin"}, "Escriba un correo electrónico válido"),
        ({"email": "x@example.com", "role": "branch_staff", "branch": ""}, "Elija la sucursal"),
        ({"email": "x@example.com", "role": "operator"}, "Elija un rol de la lista."),
    ],
)
def test_invalid_invitation_is_refused(app, admin, data, message):
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(StaffMember))
    response = admin.post("/admin/personal/nuevo", data=data)
    assert response.status_code == 422
    assert message in _page(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StaffMember)) == before


def test_branch_of_another_issuer_is_refused(app, admin, staff):
    response = admin.post(
        "/admin/personal/nuevo",
        data={"email": "x@example.com", "role": "branch_staff", "branch": staff["other_branch_id"]},
    )
    assert response.status_code == 422 and "Elija la sucursal" in _page(response)
    assert _member(app, "x@example.com") is None


def test_a_taken_email_gets_a_neutral_message(app, admin, staff):
    for email in (staff["other_admin"], staff["branch"].upper()):
        response = admin.post(
            "/admin/personal/nuevo", data={"email": email, "role": "issuer_admin"}
        )
        page = _page(response)
        assert response.status_code == 422
        assert "Ese correo ya no se puede usar para el panel del comercio." in page
        for hint in ("KEMPER", "EKU9003173C9", "otro emisor", "ya es"):
            assert hint not in page.split('id="contenido"', 1)[1]
    assert _member(app, staff["other_admin"]).issuer_id == staff["other_issuer_id"]
    assert _mails(app, staff["other_admin"]) == []


def test_disable_ends_their_sessions_at_once_and_enable_lets_them_back(
    app, admin, staff, admin_login
):
    cashier = app.test_client()
    admin_login(cashier, staff["branch"])
    assert cashier.get("/admin/").status_code == 200
    member = _member(app, staff["branch"])
    version = member.session_version

    response = admin.post(f"/admin/personal/{member.id}/estado", data={"active": "0"})
    assert response.status_code == 303
    assert "sus sesiones terminaron" in _page(admin.get(response.headers["Location"]))
    after = _member(app, staff["branch"])
    assert after.active is False and after.session_version == version + 1
    assert cashier.get("/admin/").status_code == 303  # signed out
    again = app.test_client()  # nor can they sign in
    refused = again.post(
        "/admin/entrar", data={"email": staff["branch"], "password": STAFF_PASSWORD}
    )
    assert refused.status_code != 303
    assert again.get("/admin/").status_code == 303
    assert "desactivado" in _page(admin.get("/admin/personal"))

    admin.post(f"/admin/personal/{member.id}/estado", data={"active": "1"})
    assert _member(app, staff["branch"]).active is True
    admin_login(app.test_client(), staff["branch"])
    assert admin.post(f"/admin/personal/{member.id}/estado", data={}).status_code == 400


def test_an_admin_cannot_disable_themself(app, admin, staff):
    me = _member(app, staff["admin"])
    response = admin.post(f"/admin/personal/{me.id}/estado", data={"active": "0"})
    assert response.status_code == 303
    assert "No puede desactivar su propio acceso." in _page(admin.get(response.headers["Location"]))
    assert _member(app, staff["admin"]).active is True
    assert admin.get("/admin/").status_code == 200


def test_resend_an_invitation(app, admin):
    admin.post("/admin/personal/nuevo", data={"email": "tarde@example.com", "role": "issuer_admin"})
    member = _member(app, "tarde@example.com")
    assert f'action="/admin/personal/{member.id}/invitacion"' in _page(admin.get("/admin/personal"))
    response = admin.post(f"/admin/personal/{member.id}/invitacion")
    assert response.status_code == 303
    assert len(_mails(app, "tarde@example.com")) == 2


# --- Scope --------------------------------------------------------------------------------


def test_other_issuers_admin_gets_404_for_demos_people(app, client, staff, admin_login):
    admin_login(client, staff["other_admin"])
    listing = _page(client.get("/admin/personal"))
    assert staff["other_admin"] in listing and staff["admin"] not in listing
    for email in (staff["admin"], staff["branch"]):
        member = _member(app, email)
        assert (
            client.post(f"/admin/personal/{member.id}/estado", data={"active": "0"}).status_code
            == 404
        )
        assert client.post(f"/admin/personal/{member.id}/invitacion").status_code == 404
        assert _member(app, email).active is True
    # inviting onto demo's branch is refused
    response = client.post(
        "/admin/personal/nuevo",
        data={
            "email": "y@example.com",
            "role": "branch_staff",
            "branch": str(_branch_id(app, "CENTRO")),
        },
    )
    assert response.status_code == 422 and _member(app, "y@example.com") is None


def test_branch_staff_get_403(app, client, staff, admin_login):
    admin_login(client, staff["branch"])
    admin_id = _member(app, staff["admin"]).id
    assert client.get("/admin/personal").status_code == 403
    assert client.get("/admin/personal/nuevo").status_code == 403
    response = client.post(
        "/admin/personal/nuevo", data={"email": "z@example.com", "role": "issuer_admin"}
    )
    assert response.status_code == 403
    assert (
        client.post(f"/admin/personal/{admin_id}/estado", data={"active": "0"}).status_code == 403
    )
    assert _member(app, "z@example.com") is None and _member(app, staff["admin"]).active
    assert 'href="/admin/personal"' not in _page(client.get("/admin/"))


def test_operator_manages_the_issuer_picked(app, client, staff, admin_login):
    admin_login(client, staff["operator"])
    response = client.get("/admin/personal")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/emisores")
    client.post("/admin/emisores", data={"issuer": staff["other_issuer_id"]})
    listing = _page(client.get("/admin/personal"))
    assert staff["other_admin"] in listing and staff["admin"] not in listing
    demo_admin = _member(app, staff["admin"])
    assert (
        client.post(f"/admin/personal/{demo_admin.id}/estado", data={"active": "0"}).status_code
        == 404
    )
    created = client.post(
        "/admin/personal/nuevo",
        data={
            "email": "norte@example.com",
            "role": "branch_staff",
            "branch": str(staff["other_branch_id"]),
        },
    )
    assert created.status_code == 303
    member = _member(app, "norte@example.com")
    assert member.issuer_id == staff["other_issuer_id"]
    assert member.branch_id == staff["other_branch_id"]

    client.post("/admin/emisores", data={"issuer": staff["issuer_id"]})
    listing = _page(client.get("/admin/personal"))
    assert staff["admin"] in listing and "norte@example.com" not in listing
    other_admin = _member(app, staff["other_admin"])
    assert (
        client.post(f"/admin/personal/{other_admin.id}/estado", data={"active": "0"}).status_code
        == 404
    )
    # the operator may disable an issuer's admin (not themself: they are no issuer's staff)
    response = client.post(f"/admin/personal/{demo_admin.id}/estado", data={"active": "0"})
    assert response.status_code == 303 and _member(app, staff["admin"]).active is False
