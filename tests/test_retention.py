"""Retention: after RETENTION_DAYS an invoice's files move, compressed, to the archive; the
invoice stays, and its files can still be downloaded and resent."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.flows import start, ticket_data
from webapp import config
from webapp.extensions import db
from webapp.issuing import retention
from webapp.models import Invoice, InvoiceArchive, InvoiceStatus, MailMessage

DAYS = 90


def stamp(app, t) -> tuple[str, object]:
    """Invoice ticket `t` through the flow; the result page's URL and the client that owns it."""
    client = app.test_client()
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303, r.get_data(as_text=True)
    return r.headers["Location"], client


def invoice_at(location: str) -> Invoice:
    public_id = location.rsplit("/", 1)[1]
    return db.session.scalar(select(Invoice).where(Invoice.public_id == public_id))


def age(location: str, days: int) -> None:
    """Move the invoice's stamping `days` into the past."""
    invoice = invoice_at(location)
    invoice.stamped_at -= timedelta(days=days)
    db.session.commit()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_archive_moves_the_files_and_keeps_the_invoice(app, demo):
    (old, client), (recent, _client) = (stamp(app, t) for t in demo["fresh"][:2])
    assert client.get(old + ".pdf").status_code == 200  # its PDF rendered and kept; not recent's
    with app.app_context():
        original = {loc: (invoice_at(loc).xml, invoice_at(loc).pdf) for loc in (old, recent)}
        assert original[old][0].startswith(b"<?xml") and original[old][1].startswith(b"%PDF")
        assert original[recent][1] is None
        stamped_at = invoice_at(old).stamped_at
        now = stamped_at + timedelta(days=DAYS, seconds=1)
        assert invoice_at(recent).stamped_at >= stamped_at
        age(recent, -1)  # stamped a day later: still inside the window

        assert retention.archive_due(db.session, now, DAYS) == 1

        db.session.expire_all()
        invoice = invoice_at(old)
        assert invoice.archived and invoice.archived_at == now
        assert invoice.xml is None and invoice.pdf is None
        assert invoice.status is InvoiceStatus.STAMPED and invoice.uuid  # the legal record
        stored = db.session.get(InvoiceArchive, invoice.id)
        assert stored.xml_gz[:2] == b"\x1f\x8b" and len(stored.xml_gz) < len(original[old][0])
        assert gzip.decompress(stored.xml_gz) == original[old][0]
        assert gzip.decompress(stored.pdf_gz) == original[old][1]
        assert retention.files_of(db.session, invoice) == retention.Files(*original[old])

        untouched = invoice_at(recent)
        assert not untouched.archived and untouched.archived_at is None
        assert (untouched.xml, untouched.pdf) == original[recent]
        assert db.session.get(InvoiceArchive, untouched.id) is None
        assert retention.files_of(db.session, untouched) == retention.Files(*original[recent])

        # Idempotent: a second run moves nothing more.
        assert retention.archive_due(db.session, now, DAYS) == 0
        assert count(InvoiceArchive) == 1


def test_batches_statuses_and_a_crash_moves_nothing(app, demo, monkeypatch):
    locations = [stamp(app, t)[0] for t in demo["fresh"]]
    with app.app_context():
        for loc in locations:
            age(loc, DAYS + 1)
        cancelled, failed = invoice_at(locations[1]), invoice_at(locations[2])
        cancelled.status = InvoiceStatus.CANCELLED
        failed.status = InvoiceStatus.FAILED  # no valid files to keep: never archived
        db.session.commit()
        now = datetime.now(UTC)

        # A failure in the middle of a batch rolls the whole batch back.
        real, calls = retention._compress, []

        def breaks_on_the_third(data):
            calls.append(data)
            if len(calls) == 3:
                raise OSError("disk full")
            return real(data)

        monkeypatch.setattr(retention, "_compress", breaks_on_the_third)
        with pytest.raises(OSError):
            retention.archive_due(db.session, now, DAYS)
        db.session.expire_all()
        assert count(InvoiceArchive) == 0
        assert all(invoice_at(loc).xml and not invoice_at(loc).archived for loc in locations)
        monkeypatch.setattr(retention, "_compress", real)

        assert retention.archive_due(db.session, now, DAYS, batch=1) == 2
        db.session.expire_all()
        assert [invoice_at(loc).archived for loc in locations] == [True, True, False]
        assert invoice_at(locations[2]).xml is not None
        assert retention.files_of(db.session, invoice_at(locations[1])).xml.startswith(b"<?xml")


def test_archived_files_are_still_downloaded_and_resent(app, demo):
    location, client = stamp(app, demo["fresh"][0])
    with app.app_context():
        invoice = invoice_at(location)
        xml = invoice.xml
        assert invoice.pdf is None  # never downloaded, nor emailed by the worker
        retention.archive_due(db.session, invoice.stamped_at + timedelta(days=DAYS), DAYS)
        assert invoice_at(location).archived

    assert client.get(location + ".xml").data == xml
    pdf = client.get(location + ".pdf").data  # rendered from the archived XML, kept there
    assert pdf.startswith(b"%PDF") and client.get(location + ".pdf").data == pdf
    with app.app_context():
        stored = db.session.get(InvoiceArchive, invoice_at(location).id)
        assert gzip.decompress(stored.pdf_gz) == pdf and invoice_at(location).pdf is None
    assert client.post(location + "/correo", data={"email": "otra@example.com"}).status_code == 303
    with app.app_context():
        resent = db.session.scalars(select(MailMessage).order_by(MailMessage.id.desc())).first()
        assert resent.to_addrs == "otra@example.com"
        attached = {a.filename[-3:]: a.data for a in resent.attachments}
        assert attached == {"xml": xml, "pdf": pdf}


def test_queue_invoice_mail_attaches_the_archived_xml(app, demo):
    from webapp.wiring import queue_invoice_mail

    location, _client = stamp(app, demo["fresh"][0])
    with app.test_request_context():
        invoice = invoice_at(location)
        xml = invoice.xml
        retention.archive_due(db.session, invoice.stamped_at + timedelta(days=DAYS), DAYS)
        queue_invoice_mail(db.session, invoice, "ingrid@example.com")
        db.session.commit()
        mail = db.session.scalars(select(MailMessage).order_by(MailMessage.id.desc())).first()
        assert [a.data for a in mail.attachments if a.filename.endswith(".xml")] == [xml]


def test_cli_archives_with_the_configured_days(make_app, demo):
    app = make_app(RETENTION_DAYS=30)
    location, _client = stamp(app, demo["fresh"][0])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["invoices", "archive"])
    assert result.exit_code == 0, result.output
    assert "archived the files of 0 invoice(s) stamped more than 30 days ago" in result.output
    with app.app_context():
        age(location, 31)
    result = runner.invoke(args=["invoices", "archive", "--batch", "10"])
    assert "archived the files of 1 invoice(s)" in result.output
    result = runner.invoke(args=["invoices", "archive"])
    assert "archived the files of 0 invoice(s)" in result.output
    with app.app_context():
        assert invoice_at(location).archived and count(InvoiceArchive) == 1


def test_days_left_counts_down():
    stamped = datetime(2025, 1, 10, 15, 0, tzinfo=UTC)
    invoice = Invoice(stamped_at=stamped, archived=False)
    assert retention.archive_date(invoice, DAYS) == stamped + timedelta(days=DAYS)
    left = [
        retention.days_left(invoice, DAYS, stamped + timedelta(days=d))
        for d in (0, 0.001, 1, 45.5, 89, 89.99, 90, 120)
    ]
    assert left == [90, 90, 89, 45, 1, 1, 0, 0]
    assert retention.days_left(Invoice(stamped_at=None, archived=False), DAYS, stamped) is None
    archived = Invoice(stamped_at=stamped, archived=True)
    assert retention.archive_date(archived, DAYS) is None
    assert retention.days_left(archived, DAYS, stamped) is None


def test_retention_days_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    assert config.from_environment(tmp_path)["RETENTION_DAYS"] == 90
    monkeypatch.setenv("RETENTION_DAYS", "30")
    settings = config.from_environment(tmp_path)
    assert settings["RETENTION_DAYS"] == 30
    config.check(settings)
    for bad in (0, -5, "90", 1.5):
        with pytest.raises(RuntimeError, match="RETENTION_DAYS"):
            config.check({**settings, "RETENTION_DAYS": bad})


def test_an_invoice_without_a_stamp_time_is_never_due(app, demo):
    location, _client = stamp(app, demo["fresh"][0])
    with app.app_context():
        invoice_at(location).stamped_at = None
        db.session.commit()
        assert retention.archive_due(db.session, datetime.now(UTC) + timedelta(days=999), 1) == 0
        assert invoice_at(location).xml is not None
