"""The development mailbox at /dev/mail: off unless DEBUG or DEV_MAILBOX, shows the .eml
files of the file transport as escaped text, and serves nothing outside its directory."""

from __future__ import annotations

import re

import pytest

from webapp.extensions import db
from webapp.mail import queue_mail
from webapp.mail.cli import app_sessions
from webapp.mail.worker import run_once

PDF = b"%PDF-1.4\n%%EOF\n"
BODY = """Hola:

Su factura está lista: http://localhost/factura/abc?x=1&y=2.
No haga caso de esto: <script>alert(1)</script>
"""


def send(app, subject: str, to: str = "cliente@example.com") -> None:
    with app.app_context():
        queue_mail(
            db.session,
            to,
            subject,
            BODY,
            html='<p id="parte-html">Su factura <img src="http://tracker.example/x.gif"></p>',
            attachments=[("A-1.pdf", "application/pdf", PDF)],
        )
        db.session.commit()
    assert run_once(app_sessions(app), app.config) == 1


def test_mailbox_is_not_found_when_disabled(make_app, tmp_path):
    app = make_app(DEBUG=False, DEV_MAILBOX=False)
    send(app, "Su factura")
    [eml] = (tmp_path / "mail").glob("*.eml")
    client = app.test_client()
    for url in ("/dev/mail", f"/dev/mail/{eml.name}"):
        response = client.get(url)
        assert response.status_code == 404
        assert "Su factura" not in response.get_data(as_text=True)


@pytest.mark.parametrize("flag", ["DEBUG", "DEV_MAILBOX"])
def test_mailbox_lists_and_shows_messages(make_app, flag):
    app = make_app(**{"DEBUG": False, "DEV_MAILBOX": False, flag: True})
    send(app, "Primera factura", "ana@example.com")
    send(app, "Segunda factura", "beto@example.com")
    client = app.test_client()

    listing = client.get("/dev/mail")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert "Buzón de desarrollo" in html
    assert all(label in html for label in ("Fecha", "Para", "Asunto"))
    assert html.index("Segunda factura") < html.index("Primera factura")  # newest first
    assert "ana@example.com" in html and "beto@example.com" in html

    link = re.search(r'<a href="(/dev/mail/[^"]+)">Primera factura</a>', html).group(1)
    page = client.get(link)
    assert page.status_code == 200
    shown = page.get_data(as_text=True)
    assert "ana@example.com" in shown and "Autofactura" in shown  # To and From
    assert '<a href="http://localhost/factura/abc?x=1&amp;y=2" rel="noreferrer">' in shown
    assert "?x=1&amp;y=2</a>." in shown  # the final period is not part of the link
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "<script>alert" not in shown
    assert "parte-html" not in shown and "tracker.example" not in shown  # HTML not rendered
    assert "versión HTML" in shown
    assert "A-1.pdf" in shown
    assert re.search(r"&lt;[0-9a-f]{32}@localhost&gt;", shown)  # the Message-ID
    assert "<style" not in shown and " style=" not in shown


def test_mailbox_serves_nothing_outside_its_files(make_app, tmp_path):
    app = make_app(DEV_MAILBOX=True)
    send(app, "Su factura")
    secret_name = "20250101T000000.000000Z-1.eml"
    (tmp_path / secret_name).write_text("Subject: SECRETO\n\nSECRETO\n")
    (tmp_path / "mail" / "notas.eml").write_text("Subject: NOTAS\n\nNOTAS\n")
    client = app.test_client()

    for url in (
        f"/dev/mail/..%2F{secret_name}",
        f"/dev/mail/%2e%2e%2f{secret_name}",
        f"/dev/mail/../{secret_name}",
        "/dev/mail/..",
        "/dev/mail/notas.eml",
        "/dev/mail/20250101T000000.000000Z-999.eml",  # well formed, but no such file
    ):
        response = client.get(url)
        body = response.get_data(as_text=True)
        assert response.status_code == 404, url
        assert "SECRETO" not in body and "NOTAS" not in body
    assert "NOTAS" not in client.get("/dev/mail").get_data(as_text=True)


def test_mailbox_explains_when_mail_goes_by_smtp(make_app):
    client = make_app(DEV_MAILBOX=True, MAIL_URL="smtp://127.0.0.1:2525").test_client()
    response = client.get("/dev/mail")
    assert response.status_code == 200
    assert "no escribe archivos" in response.get_data(as_text=True)
