"""The PDF is made after the stamp: the customer's result page never waits for it.

It is rendered on the first download (then kept: every later download answers the same bytes
without rendering), or by the mail worker when it delivers the invoice's email (and kept the
same way); two first downloads at once both answer the one PDF that was kept.
"""

from __future__ import annotations

import gzip
import io
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from sqlalchemy import select

from tests.flows import PATIENCE, make_invoice, stamp
from webapp.extensions import db
from webapp.issuing import retention
from webapp.mail import Rendered, queue_mail
from webapp.mail.cli import app_sessions
from webapp.mail.worker import run_once
from webapp.models import Invoice, InvoiceArchive, MailMessage, MailStatus, utcnow
from webapp.services import stamping as service


@pytest.fixture
def renders(monkeypatch):
    """Every PDF rendered (the service's calls of webapp.cfdi.pdf.render_pdf), in order."""
    real, made = service.render_pdf, []

    def counted(xml, **options):
        pdf = real(xml, **options)
        made.append(pdf)
        return pdf

    monkeypatch.setattr(service, "render_pdf", counted)
    return made


def invoice_of(public_id: str) -> Invoice:
    return db.session.scalar(select(Invoice).where(Invoice.public_id == public_id))


def the_mail() -> MailMessage:
    return db.session.scalars(select(MailMessage)).one()


def sent_attachments(directory) -> dict[str, bytes]:
    """The attachments of the one .eml the file transport wrote, by file extension."""
    [eml] = directory.glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    return {a.get_filename()[-3:]: a.get_content() for a in message.iter_attachments()}


def test_the_result_page_answers_before_any_pdf_the_first_download_renders_and_keeps_it(
    app, client, demo, renders
):
    public_id = stamp(client, demo["fresh"][0])
    page = client.get(f"/facturar/factura/{public_id}")
    assert page.status_code == 200 and "Descargar PDF" in page.get_data(as_text=True)
    assert renders == []  # neither the stamping request nor the result page made a PDF
    with app.app_context():
        assert invoice_of(public_id).pdf is None
        # The email is queued in the stamp's commit with its PDF left for the mail worker.
        pdf = [a for a in the_mail().attachments if a.filename.endswith(".pdf")]
        assert [(a.data, a.renderer) for a in pdf] == [(None, service.INVOICE_PDF)]

    first = client.get(f"/facturar/factura/{public_id}.pdf")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert first.data.startswith(b"%PDF") and len(renders) == 1
    second = client.get(f"/facturar/factura/{public_id}.pdf")
    assert second.data == first.data and len(renders) == 1  # kept, not rendered again
    with app.app_context():
        assert invoice_of(public_id).pdf == first.data


def test_two_first_downloads_at_once_answer_the_same_kept_pdf(app, demo, monkeypatch):
    """Both requests render (neither finds a PDF), one keeps its own, and both answer that
    one: every later download too."""
    owner = app.test_client()
    public_id = stamp(owner, demo["fresh"][0])
    cookie = owner.get_cookie(app.config["SESSION_COOKIE_NAME"])
    clients = [owner, app.test_client()]
    clients[1].set_cookie(cookie.key, cookie.value)  # the same browser, a second connection

    real, both_rendered, made = service.render_pdf, threading.Barrier(2, timeout=PATIENCE), []

    def distinct(xml, **options):  # each render its own bytes, so "the same" means kept
        pdf = real(xml, **options) + f"\n% render {len(made)}\n".encode()
        made.append(pdf)
        both_rendered.wait()  # neither keeps its PDF before the other has rendered
        return pdf

    monkeypatch.setattr(service, "render_pdf", distinct)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda c: c.get(f"/facturar/factura/{public_id}.pdf"), clients))

    assert [a.status_code for a in answers] == [200, 200]
    assert len(made) == 2 and made[0] != made[1]
    assert answers[0].data == answers[1].data and answers[0].data in made
    with app.app_context():
        assert invoice_of(public_id).pdf == answers[0].data
    assert owner.get(f"/facturar/factura/{public_id}.pdf").data == answers[0].data
    assert len(made) == 2


def test_the_mail_worker_attaches_the_pdf_and_keeps_it(make_app, demo, renders, tmp_path):
    app = make_app(DEV_MAILBOX=True)
    client = app.test_client()
    public_id = stamp(client, demo["fresh"][0])
    assert renders == []

    assert run_once(app_sessions(app), app.config) == 1
    attached = sent_attachments(tmp_path / "mail")
    assert attached["pdf"].startswith(b"%PDF") and attached["xml"].startswith(b"<?xml")
    assert renders == [attached["pdf"]]
    with app.app_context():
        assert invoice_of(public_id).pdf == attached["pdf"]  # kept on the invoice
        assert [a.data for a in the_mail().attachments][1] == attached["pdf"]  # and in the row

    # The download finds it: the same bytes, nothing rendered again.
    assert client.get(f"/facturar/factura/{public_id}.pdf").data == attached["pdf"]
    assert len(renders) == 1
    # The development mailbox lists the message and names its PDF.
    [eml] = (tmp_path / "mail").glob("*.eml")
    shown = client.get(f"/dev/mail/{eml.name}").get_data(as_text=True)
    with app.app_context():
        assert service.filename(invoice_of(public_id), "pdf") in shown


def test_the_worker_does_not_render_a_pdf_already_downloaded(app, client, demo, renders, tmp_path):
    public_id = stamp(client, demo["fresh"][0])
    downloaded = client.get(f"/facturar/factura/{public_id}.pdf").data
    assert len(renders) == 1
    assert run_once(app_sessions(app), app.config) == 1
    assert sent_attachments(tmp_path / "mail")["pdf"] == downloaded
    assert len(renders) == 1


def test_a_renderer_failure_is_retried_and_the_retry_sends_the_pdf(
    make_app, demo, monkeypatch, tmp_path
):
    app = make_app(MAIL_RETRY_SECONDS=30)
    public_id = stamp(app.test_client(), demo["fresh"][0])
    real = service.render_pdf

    def broken(xml, **options):
        raise OSError("font cache unreadable")

    monkeypatch.setattr(service, "render_pdf", broken)
    t0 = utcnow()
    assert run_once(app_sessions(app), app.config, t0) == 0
    with app.app_context():
        mail = the_mail()
        assert (mail.status, mail.attempts) == (MailStatus.PENDING, 1)
        assert "font cache unreadable" in mail.last_error
        assert mail.next_attempt_at == t0 + timedelta(seconds=30)
        assert invoice_of(public_id).pdf is None
    assert not (tmp_path / "mail").exists() or not list((tmp_path / "mail").glob("*.eml"))

    monkeypatch.setattr(service, "render_pdf", real)
    assert run_once(app_sessions(app), app.config, t0 + timedelta(seconds=31)) == 1
    pdf = sent_attachments(tmp_path / "mail")["pdf"]
    with app.app_context():
        assert the_mail().status is MailStatus.SENT
        assert pdf.startswith(b"%PDF") and invoice_of(public_id).pdf == pdf


def test_an_archived_invoice_without_pdf_downloads_one_kept_in_the_archive(
    app, demo, staff, admin_login, renders
):
    public_id = make_invoice(app)
    with app.app_context():
        invoice = invoice_of(public_id)
        assert invoice.pdf is None
        retention.archive_due(db.session, invoice.stamped_at + timedelta(days=1), 0)
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    url = f"/admin/facturas/{public_id}/factura.pdf"
    pdf = admin.get(url).data
    assert pdf.startswith(b"%PDF") and admin.get(url).data == pdf and len(renders) == 1
    with app.app_context():
        invoice = invoice_of(public_id)
        assert invoice.archived and invoice.pdf is None
        assert gzip.decompress(db.session.get(InvoiceArchive, invoice.id).pdf_gz) == pdf


def test_the_panel_zip_renders_the_pdfs_never_made_and_keeps_them(app, client, stamped, renders):
    r = client.post("/facturas/zip", data={"f": stamped[:2]})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:  # streamed: rendered as it goes
        zipped = {archive.read(n) for n in archive.namelist() if n.endswith(".pdf")}
    assert len(renders) == 2 and zipped == set(renders)
    with app.app_context():
        kept = {invoice_of(p).pdf for p in stamped[:2]}
    assert kept == zipped
    assert client.get(f"/facturas/{stamped[0]}.pdf").data in kept and len(renders) == 2
    # The export of the whole list: the third one's PDF made now, the two others as kept.
    with zipfile.ZipFile(io.BytesIO(client.get("/facturas/exportar.zip").data)) as archive:
        exported = {archive.read(n) for n in archive.namelist() if n.endswith(".pdf")}
    assert len(renders) == 3 and exported == set(renders)
    with app.app_context():
        assert invoice_of(stamped[2]).pdf == renders[2]


def test_queue_mail_refuses_an_unknown_renderer(app):
    with app.app_context(), pytest.raises(ValueError, match="renderer"):
        queue_mail(
            db.session,
            "ana@example.com",
            "Su factura",
            "Hola",
            attachments=[("A-1.pdf", "application/pdf", Rendered("no_such_renderer", 1))],
        )


def test_a_pdf_that_fails_to_render_is_not_a_500_and_renders_next_time(app, demo, monkeypatch):
    client = app.test_client()
    public_id = stamp(client, demo["fresh"][0])
    real = service.render_pdf

    def broken(xml, **options):
        raise OSError("font cache unreadable")

    monkeypatch.setattr(service, "render_pdf", broken)
    assert client.get(f"/facturar/factura/{public_id}.pdf").status_code == 404
    assert client.get(f"/facturar/factura/{public_id}.xml").status_code == 200
    monkeypatch.setattr(service, "render_pdf", real)
    r = client.get(f"/facturar/factura/{public_id}.pdf")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
