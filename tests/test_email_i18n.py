"""Emails speak the language of the interface the visitor chose."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import MailMessage

RFC = "XOJI740919U48"
EMAIL = "ingrid@example.com"


def mails(app):
    with app.app_context():
        return [
            (m.subject, m.body_text)
            for m in db.session.scalars(select(MailMessage).order_by(MailMessage.id))
        ]


def test_registration_email_comes_in_english_for_an_english_visitor(app, client):
    assert client.post("/idioma", data={"lang": "en", "next": "/"}).status_code == 303
    response = client.post(
        "/cuenta/registro", data={"rfc": RFC, "email": EMAIL, "email_confirm": EMAIL}
    )
    assert response.status_code == 303
    [(subject, body)] = mails(app)
    assert subject == "Autofactura: finish your registration"
    assert body.startswith(
        f"Dear customer,\n\nTo finish your registration (RFC {RFC}), open this link and choose"
        " your password:\n\nhttp://localhost/cuenta/verificar/"
    )
    assert "The link works only once and expires in" in body
    assert "Estimado" not in body and "enlace" not in body


def test_registration_email_stays_in_spanish_by_default(app, client):
    client.post("/cuenta/registro", data={"rfc": RFC, "email": EMAIL, "email_confirm": EMAIL})
    [(subject, body)] = mails(app)
    assert subject == "Autofactura: termine su registro"
    assert body.startswith(f"Estimado cliente:\n\nPara finalizar su registro (RFC {RFC}), abra")


def test_emails_rendered_outside_a_request_are_spanish(app):
    """A command or a worker has no visitor: its emails speak Spanish, and do not fail."""
    from flask import render_template

    with app.app_context():
        subject = render_template("accounts/email/verify.subject.txt", url="https://x/y")
    assert "registro" in subject.lower()
