"""Back office: tickets (/admin/tickets): CSV upload with a row-by-row report, the issuer's
recent imports, and recent tickets filtered by branch and status.

Issuer admins (and the operator) see every branch; branch staff upload and see only their
branch's tickets and their branch's imports. Reports of another issuer are a 404.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Response, abort, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from wtforms import FileField, Form, SelectField
from wtforms.fields.choices import SelectChoice

from webapp.admin import bp, scope
from webapp.admin.auth import staff_required
from webapp.errors import handle_http
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import Branch, StaffMember, StaffRole, Ticket, TicketImport, TicketStatus
from webapp.tickets import csvfile

ROLES = (StaffRole.ISSUER_ADMIN, StaffRole.BRANCH_STAFF)
MAX_BYTES = 2 * 1024 * 1024
CSV_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", ""}
RECENT_IMPORTS = 20
RECENT_TICKETS = 50

STATUS_LABELS = {
    TicketStatus.OPEN: _l("abierto"),
    TicketStatus.INVOICED: _l("facturado"),
    TicketStatus.IN_GLOBAL: _l("en factura global"),
    TicketStatus.CANCELLED: _l("cancelado"),
}
ROW_LABELS = {"accepted": _l("aceptado"), "existing": _l("ya existía"), "rejected": _l("rechazado")}


class UploadForm(FlaskForm):
    file = FileField(_l("Archivo CSV"), render_kw={"accept": ".csv,text/csv"})


class TicketFilter(Form):
    sucursal = SelectField(_l("Sucursal"), choices=[], validate_choice=False)
    estado = SelectField(_l("Estado"), choices=[], validate_choice=False)


def _imports_query():
    query = select(TicketImport).where(TicketImport.issuer_id == scope.issuer().id)
    if (ids := scope.branch_ids()) is not None:  # branch staff: imports of their branch's staff
        query = query.join(StaffMember, StaffMember.id == TicketImport.staff_id).where(
            StaffMember.branch_id.in_(ids)
        )
    return query


def _filter_form(branches: list[Branch]) -> tuple[TicketFilter, int | None, TicketStatus | None]:
    form = TicketFilter(request.args)
    form.sucursal.choices = [SelectChoice("", _("Todas"))] + [
        SelectChoice(str(b.id), b.code) for b in branches
    ]
    form.estado.choices = [SelectChoice("", _("Todos"))] + [
        SelectChoice(s.value, STATUS_LABELS[s]) for s in TicketStatus
    ]
    branch_id = next((b.id for b in branches if str(b.id) == form.sucursal.data), None)
    status = next((s for s in TicketStatus if s.value == form.estado.data), None)
    return form, branch_id, status


def _page(form: UploadForm, status: int = 200):
    branches = db.session.scalars(scope.branches_query()).all()
    filters, branch_id, ticket_status = _filter_form(branches)
    ids = [branch_id] if branch_id is not None else [b.id for b in branches]
    query = (
        select(Ticket)
        .where(Ticket.branch_id.in_(ids))
        .options(selectinload(Ticket.branch))
        .order_by(Ticket.sold_at.desc(), Ticket.id.desc())
        .limit(RECENT_TICKETS)
    )
    if ticket_status is not None:
        query = query.where(Ticket.status == ticket_status)
    imports = db.session.scalars(
        _imports_query().order_by(TicketImport.id.desc()).limit(RECENT_IMPORTS)
    ).all()
    return render(
        "admin/imports.html",
        "content",
        status=status,
        form=form,
        filters=filters,
        tickets=db.session.scalars(query).all(),
        imports=imports,
        columns=csvfile.COLUMN_DOCS,
        optional=csvfile.OPTIONAL,
        status_labels=STATUS_LABELS,
        max_mb=MAX_BYTES // (1024 * 1024),
    )


@bp.route("/tickets", methods=["GET", "POST"])
@staff_required(*ROLES)
def imports():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return redirect(url_for("admin.issuers"), 303)
    if g.get("upload_too_large"):  # over MAX_CONTENT_LENGTH: the body is never read
        form = UploadForm(formdata=None)
        form.file.errors = [_too_large()]
        return _page(form, 413)
    form = UploadForm()
    if request.method == "POST" and form.validate_on_submit():
        upload = request.files.get(form.file.name)
        error, data = read_upload(upload)
        if error is None:
            try:
                report = csvfile.import_csv(
                    db.session,
                    scope.issuer().id,
                    data,
                    now=datetime.now(UTC),
                    allowed_branch_ids=scope.branch_ids(),
                )
            except csvfile.CsvError as exc:
                db.session.rollback()
                error = _(exc.message, **exc.params)
            else:
                record = TicketImport(
                    issuer_id=scope.issuer().id,
                    staff_id=scope.member().id,
                    filename=(upload.filename or "")[:255],
                    accepted=report.accepted,
                    rejected=report.rejected,
                    report=json.dumps(
                        {"existing": report.existing, "rows": [r.as_dict() for r in report.rows]},
                        ensure_ascii=False,
                    ),
                )
                db.session.add(record)
                db.session.commit()
                return redirect(url_for("admin.import_report", public_id=record.public_id), 303)
        form.file.errors = [error]
        return _page(form, 422)
    if request.method == "POST":  # a CSRF failure: the message goes next to the field
        form.file.errors = list(form.errors.get("csrf_token", [])) or [_("Elija un archivo CSV.")]
        return _page(form, 422)
    return _page(form)


def read_upload(upload) -> tuple[str | None, bytes]:
    if upload is None or not upload.filename:
        return _("Elija un archivo CSV."), b""
    name = upload.filename.lower()
    mimetype = (upload.mimetype or "").lower()
    if not name.endswith(".csv") or mimetype not in CSV_TYPES:
        return _("El archivo debe ser CSV (.csv), como el ejemplo."), b""
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return _too_large(), b""
    if not data.strip():
        return _("El archivo está vacío."), b""
    if b"\x00" in data:
        return _("El archivo debe ser CSV (.csv), como el ejemplo."), b""
    return None, data


def _too_large() -> str:
    return _("El archivo excede %(mb)s MB; divídalo en varios.", mb=MAX_BYTES // (1024 * 1024))


@bp.errorhandler(RequestEntityTooLarge)
def _upload_too_large(error: RequestEntityTooLarge):
    """A CSV over the app-wide MAX_CONTENT_LENGTH: the import page again (413) with the
    message next to the file field, after the view's own sign-in and role checks. Other
    admin pages keep the generic 413 page."""
    if request.endpoint != "admin.imports" or request.method != "POST":
        return handle_http(error)
    g.upload_too_large = True
    try:
        return imports()
    except HTTPException as problem:  # e.g. 403 from staff_required
        return handle_http(problem)


@bp.get("/tickets/ejemplo.csv")
@staff_required(*ROLES)
def imports_sample():
    return Response(
        "\ufeff" + csvfile.sample_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="tickets-ejemplo.csv"'},
    )


@bp.get("/tickets/importacion/<public_id>")
@staff_required(*ROLES)
def import_report(public_id: str):
    record = db.session.scalar(_imports_query().where(TicketImport.public_id == public_id))
    if record is None:
        abort(404)
    try:
        data = json.loads(record.report)
    except ValueError:
        data = {}
    if isinstance(data, list):
        data = {"rows": data}
    rows = [row for row in data.get("rows", []) if isinstance(row, dict)]
    for row in rows:
        row["message"] = row_message(row)
    return render(
        "admin/imports_report.html",
        "content",
        record=record,
        rows=rows,
        existing=data.get("existing", sum(1 for r in rows if r.get("status") == "existing")),
        row_labels=ROW_LABELS,
    )


def row_message(row: dict) -> str:
    """A report row's notes in the reader's language; reports stored before notes existed
    (or a note that no longer fits its translation) read as stored, in Spanish."""
    stored = str(row.get("message") or "")
    notes = row.get("notes")
    if not isinstance(notes, list) or not notes:
        return stored
    texts = []
    for note in notes:
        try:
            text = _(note["message"], **note.get("params", {}))
        except (KeyError, TypeError, ValueError, AttributeError):
            return stored
        texts.append(f"{note['column']}: {text}" if note.get("column") else text)
    return " ".join(texts)
