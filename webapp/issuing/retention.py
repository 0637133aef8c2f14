"""Retention: an invoice's files are at hand for RETENTION_DAYS after stamping, then archived.

Archiving moves the XML and PDF of a stamped or cancelled invoice into `invoice_archive`,
gzip-compressed, and empties the invoice's columns, in one transaction: a crash leaves each
file either still in the invoice or in the archive, never lost and never half moved. The
invoice row, the legal record, is never deleted; `files_of` gives its files wherever they are.

The PDF is a representation of the stamped XML, rendered after the stamp (on the first
download, or by the mail worker): `keep_pdf` stores it where the files are, the invoice's
column or the archive (compressed like the XML), once.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import false, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from webapp.db import lock_for_write
from webapp.models import Invoice, InvoiceArchive, InvoiceStatus

WITH_FILES = (InvoiceStatus.STAMPED, InvoiceStatus.CANCELLED)


@dataclass(frozen=True)
class Files:
    xml: bytes | None
    pdf: bytes | None


def _compress(data: bytes | None) -> bytes | None:
    return None if data is None else gzip.compress(data, mtime=0)


def _decompress(data: bytes | None) -> bytes | None:
    return None if data is None else gzip.decompress(data)


def archive_due(session: Session, now: datetime, days: int, batch: int = 500) -> int:
    """Archive the files of invoices stamped at least `days` before `now`; how many moved.

    Commits once per batch (the session should have nothing pending). Idempotent, and safe
    beside another run: PostgreSQL skips the rows another run holds, SQLite serialises writers.
    """
    due = (
        Invoice.status.in_(WITH_FILES),
        Invoice.archived == false(),
        Invoice.xml.is_not(None),
        Invoice.stamped_at <= now - timedelta(days=days),
    )
    moved = 0
    while True:
        session.commit()
        lock_for_write(session)
        try:
            ids = session.scalars(
                select(Invoice.id)
                .where(*due)
                .order_by(Invoice.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for invoice_id in ids:  # one invoice's files in memory at a time
                xml, pdf = session.execute(
                    select(Invoice.xml, Invoice.pdf).where(Invoice.id == invoice_id)
                ).one()
                session.execute(
                    insert(InvoiceArchive).values(
                        invoice_id=invoice_id,
                        xml_gz=_compress(xml),
                        pdf_gz=_compress(pdf),
                        archived_at=now,
                    )
                )
            if ids:
                session.execute(
                    update(Invoice)
                    .where(Invoice.id.in_(ids))
                    .values(xml=None, pdf=None, archived=True, archived_at=now)
                )
            session.commit()
        except BaseException:
            session.rollback()
            raise
        moved += len(ids)
        if len(ids) < batch:
            return moved


def files_of(session: Session, invoice: Invoice) -> Files:
    """The invoice's XML and PDF: its own columns, or the archive's decompressed."""
    if not invoice.archived:
        return Files(invoice.xml, invoice.pdf)
    stored = session.get(InvoiceArchive, invoice.id)
    if stored is None:
        return Files(None, None)
    return Files(_decompress(stored.xml_gz), _decompress(stored.pdf_gz))


def keep_pdf(session: Session, invoice: Invoice, pdf: bytes) -> bytes:
    """Store `pdf` as the invoice's PDF where its files are (its column, or the archive
    compressed) if it has none yet, and commit; the PDF it keeps: `pdf`, or the one another
    process stored first. Commits what the session had pending.

    Each store is a conditional UPDATE (WHERE the PDF IS NULL): of two first downloads at
    once both render, one stores, and both answer the same stored bytes. Files archived
    meanwhile: the row's UPDATE finds it archived (PostgreSQL waits for the archiving's row
    lock; SQLite serialises writers), so the PDF goes to the archive instead.
    """
    invoice_id = invoice.id
    session.commit()
    lock_for_write(session)
    try:
        kept = session.execute(
            update(Invoice)
            .where(
                Invoice.id == invoice_id,
                Invoice.archived == false(),
                Invoice.xml.is_not(None),
                Invoice.pdf.is_(None),
            )
            .values(pdf=pdf)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not kept:
            kept = session.execute(
                update(InvoiceArchive)
                .where(InvoiceArchive.invoice_id == invoice_id, InvoiceArchive.pdf_gz.is_(None))
                .values(pdf_gz=_compress(pdf))
                .execution_options(synchronize_session=False)
            ).rowcount
        session.commit()
    except BaseException:
        session.rollback()
        raise
    found = pdf
    if not kept:  # another process kept one first (or the files moved): what is stored now
        stored, archived = session.execute(
            select(Invoice.pdf, Invoice.archived).where(Invoice.id == invoice_id)
        ).one()
        if archived:
            stored = _decompress(
                session.scalar(
                    select(InvoiceArchive.pdf_gz).where(InvoiceArchive.invoice_id == invoice_id)
                )
            )
        found = pdf if stored is None else stored
    # The objects loaded before say there is no PDF: they read it again when next used.
    cached = session.identity_map.get(identity_key(InvoiceArchive, invoice_id))
    if cached is not None:
        session.expire(cached)
    if invoice in session:  # (an object of another session keeps what it loaded)
        session.expire(invoice, ["xml", "pdf", "archived", "archived_at"])
    session.commit()
    return found


def archive_date(invoice: Invoice, days: int) -> datetime | None:
    """When the invoice's files move to the archive; None if never stamped or already moved."""
    if invoice.stamped_at is None or invoice.archived:
        return None
    return invoice.stamped_at + timedelta(days=days)


def days_left(invoice: Invoice, days: int, now: datetime) -> int | None:
    """Whole days (rounded up) until the files move; 0 when due, None as archive_date."""
    when = archive_date(invoice, days)
    if when is None:
        return None
    return max(0, math.ceil((when - now).total_seconds() / 86400))
