"""Back office of a service provider (an issuer of kind "services"): its service accounts
(/admin/servicios/cuentas: search by account number, holder or line; status filter; pages),
an account's page (lines, plans, billing day, fiscal data, recent charges, payments and
bills), and the CSV upload of accounts with their lines, charges or payments with a
row-by-row report.

A retail issuer's staff get a page that says these are for service providers. Everything is
read through `scope.issuer()`, so another issuer's account is a 404.

The upload answers with its report (no redirect): there is no stored import to redirect to,
and posting the same file again changes nothing (every row is an upsert: "sin cambios").
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime

from flask import Response, abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload
from wtforms import FileField, Form, SearchField, SelectField
from wtforms.fields.choices import SelectChoice

from webapp.admin import bp, scope
from webapp.admin.auth import staff_required
from webapp.admin.imports import MAX_BYTES, read_upload, row_message
from webapp.billing import catalog, csvfile
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import (
    AccountStatus,
    Charge,
    Payment,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    StaffRole,
)
from webapp.sms.outbox import normalise_number

ADMIN, BRANCH = StaffRole.ISSUER_ADMIN, StaffRole.BRANCH_STAFF
PAGE_SIZE = 25
SEARCH_MAX = 60
RECENT = 20
BILLS = 24

STATUS_LABELS = {
    AccountStatus.ACTIVE: _l("activa"),
    AccountStatus.SUSPENDED: _l("suspendida"),
    AccountStatus.CLOSED: _l("cerrada"),
}
LINE_STATUS_LABELS = {
    AccountStatus.ACTIVE: _l("activa"),
    AccountStatus.SUSPENDED: _l("suspendida"),
    AccountStatus.CLOSED: _l("dada de baja"),
}
KIND_LABELS = {
    "cuentas": _l("Cuentas y sus líneas"),
    "cargos": _l("Cargos"),
    "pagos": _l("Pagos"),
}
ROW_LABELS = {
    "created": _l("creado"),
    "updated": _l("actualizado"),
    "unchanged": _l("sin cambios"),
    "rejected": _l("rechazado"),
}
BILL_KINDS = {"invoice": _l("factura"), "receipt": _l("recibo")}


class AccountFilter(Form):
    q = SearchField(
        _l("Buscar"),
        render_kw={
            "maxlength": SEARCH_MAX,
            "placeholder": _l("Cuenta, titular o línea"),
            "autocomplete": "off",
        },
    )
    estado = SelectField(_l("Estado"), choices=[], validate_choice=False)


class UploadForm(FlaskForm):
    tipo = SelectField(
        _l("Contenido del archivo"),
        choices=[SelectChoice(kind, label) for kind, label in KIND_LABELS.items()],
        default="cuentas",
        validate_choice=False,
    )
    file = FileField(_l("Archivo CSV"), render_kw={"accept": ".csv,text/csv"})


def _not_services():
    """The page of a retail issuer: these views are a service provider's."""
    return render("admin/services_not_services.html", "content")


def _issuer_or_redirect():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return None, redirect(url_for("admin.issuers"), 303)
    issuer = scope.issuer()
    if not catalog.is_services(issuer):
        return None, _not_services()
    return issuer, None


def _search(query, text: str):
    """Accounts whose number starts with `text`, whose holder's name holds it, or with a
    line whose number is it (a phone written any common way) or holds its digits."""
    text = text.strip()[:SEARCH_MAX]
    if not text:
        return query
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    numbers = {text}
    with contextlib.suppress(ValueError):
        numbers.add(normalise_number(text))
    digits = "".join(c for c in text if c.isascii() and c.isdigit())
    line_match = ServiceLine.number.in_(numbers)
    if len(digits) >= 4:
        line_match = or_(line_match, ServiceLine.number.contains(digits, autoescape=True))
    lines = select(ServiceLine.service_account_id).where(
        ServiceLine.issuer_id == ServiceAccount.issuer_id, line_match
    )
    return query.where(
        or_(
            ServiceAccount.number.startswith(text, autoescape=True),
            ServiceAccount.holder_name.like(f"%{escaped.upper()}%", escape="\\"),
            ServiceAccount.id.in_(lines),
        )
    )


@bp.get("/servicios/cuentas")
@staff_required(ADMIN, BRANCH)
def service_accounts():
    issuer, answer = _issuer_or_redirect()
    if answer is not None:
        return answer
    form = AccountFilter(request.args)
    form.estado.choices = [SelectChoice("", _("Todos"))] + [
        SelectChoice(s.value, label) for s, label in STATUS_LABELS.items()
    ]
    status = next((s for s in AccountStatus if s.value == form.estado.data), None)
    query = select(ServiceAccount).where(ServiceAccount.issuer_id == issuer.id)
    if status is not None:
        query = query.where(ServiceAccount.status == status)
    query = _search(query, form.q.data or "")
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = request.args.get("pagina", "1")
    number = min(int(page), pages) if page.isascii() and page.isdigit() and int(page) else 1
    accounts = db.session.scalars(
        query.options(selectinload(ServiceAccount.lines))
        .order_by(ServiceAccount.number)
        .offset((number - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return render(
        "admin/services_accounts.html",
        "results",
        form=form,
        accounts=accounts,
        total=total,
        number=number,
        pages=pages,
        filtered=bool((form.q.data or "").strip() or status),
        page_url=_page_url,
        status_labels=STATUS_LABELS,
    )


def _page_url(number: int) -> str:
    args = {k: v for k, v in request.args.items() if k != "pagina" and v}
    if number > 1:
        args["pagina"] = str(number)
    return url_for("admin.service_accounts", **args)


@bp.get("/servicios/cuentas/<path:number>")
@staff_required(ADMIN, BRANCH)
def service_account(number: str):
    issuer, answer = _issuer_or_redirect()
    if answer is not None:
        return answer
    account = db.session.scalar(
        select(ServiceAccount)
        .where(ServiceAccount.issuer_id == issuer.id, ServiceAccount.number == number[:40])
        .options(
            selectinload(ServiceAccount.lines).selectinload(ServiceLine.plan),
            selectinload(ServiceAccount.lines).selectinload(ServiceLine.service_type),
        )
    )
    if account is None:
        abort(404)
    lines = {line.id: line.number for line in account.lines}
    charges = db.session.scalars(
        select(Charge)
        .where(Charge.issuer_id == issuer.id, Charge.service_account_id == account.id)
        .order_by(Charge.period.desc(), Charge.id.desc())
        .limit(RECENT)
    ).all()
    payments = db.session.scalars(
        select(Payment)
        .where(Payment.issuer_id == issuer.id, Payment.service_account_id == account.id)
        .order_by(Payment.received_at.desc(), Payment.id.desc())
        .limit(RECENT)
    ).all()
    bills = db.session.scalars(
        select(ServiceBill)
        .where(ServiceBill.issuer_id == issuer.id, ServiceBill.service_account_id == account.id)
        .order_by(ServiceBill.period.desc())
        .limit(BILLS)
    ).all()
    return render(
        "admin/services_account.html",
        "content",
        account=account,
        line_numbers=lines,
        charges=charges,
        payments=payments,
        bills=bills,
        status_labels=STATUS_LABELS,
        line_status_labels=LINE_STATUS_LABELS,
        bill_kinds=BILL_KINDS,
    )


def _upload_page(form: UploadForm, status: int = 200, report=None):
    return render(
        "admin/services_import.html",
        "content",
        status=status,
        form=form,
        layouts=csvfile.kinds(scope.issuer().country),
        kind_labels=KIND_LABELS,
        report=report,
        row_labels=ROW_LABELS,
        max_mb=MAX_BYTES // (1024 * 1024),
    )


@bp.route("/servicios/cargar", methods=["GET", "POST"])
@staff_required(ADMIN)
def services_import():
    _issuer, answer = _issuer_or_redirect()
    if answer is not None:
        return answer
    form = UploadForm()
    if request.method == "POST" and form.validate_on_submit():
        kind = form.tipo.data
        if kind not in csvfile.KINDS:
            form.tipo.errors = [_("Elija qué contiene el archivo.")]
            return _upload_page(form, 422)
        upload = request.files.get(form.file.name)
        error, data = read_upload(upload)
        if error is None:
            try:
                report = csvfile.import_csv(
                    db.session, scope.issuer(), kind, data, now=datetime.now(UTC)
                )
            except csvfile.CsvError as exc:
                db.session.rollback()
                error = _(exc.message, **exc.params)
            else:
                db.session.commit()
                rows = [
                    {
                        "row": r.row,
                        "key": r.key,
                        "status": r.status,
                        "message": row_message(
                            {"message": r.message, "notes": [n.as_dict() for n in r.notes]}
                        ),
                    }
                    for r in report.rows
                ]
                return _upload_page(form, 200, {"summary": report, "rows": rows})
        form.file.errors = [error]
        return _upload_page(form, 422)
    if request.method == "POST":  # a CSRF failure: the message goes next to the field
        form.file.errors = list(form.errors.get("csrf_token", [])) or [_("Elija un archivo CSV.")]
        return _upload_page(form, 422)
    return _upload_page(form)


@bp.get("/servicios/ejemplo-<kind>.csv")
@staff_required(ADMIN)
def services_sample(kind: str):
    layout = csvfile.KINDS.get(kind)
    if layout is None:
        abort(404)
    return Response(
        "\ufeff" + csvfile.sample_csv(layout, scope.issuer().country),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{kind}-ejemplo.csv"'},
    )
