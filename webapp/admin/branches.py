"""Back office: the issuer's branches (create, edit, disable; never delete: tickets and
invoices point at them) and the kiosks of each branch (enrolment link and QR, revoke).

Issuer admins and the operator only. Forms open in the page's <dialog> through htmx and are
full pages without JavaScript (the profile pages' pattern): success inside the dialog
answers 204 with HX-Redirect, on a page 303; errors 422 on a page, 200 as a fragment.
"""

from __future__ import annotations

from datetime import UTC, datetime

import segno
from flask import abort, current_app, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.admin import bp, scope
from webapp.admin.auth import staff_required
from webapp.admin.branch_forms import (
    CODE_TAKEN,
    PAIR_TAKEN,
    BranchForm,
    EcBranchForm,
    KioskForm,
    code_taken,
    fill,
    form_class,
    open_tickets,
    pair_problem,
)
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.kiosk import devices
from webapp.models import Branch, Kiosk, StaffRole

ADMIN = StaffRole.ISSUER_ADMIN


def _done(url: str):
    """Success: from the dialog the whole page goes on to `url`; without JS, a redirect."""
    if is_htmx():
        return "", 204, {"HX-Redirect": url}
    return redirect(url, 303)


def _status(form: FlaskForm) -> int:
    return 422 if request.method == "POST" and form.errors and not is_htmx() else 200


def _kiosk(branch: Branch, kiosk_id: int) -> Kiosk:
    """A kiosk of `branch` (itself in scope), or 404."""
    found = db.session.scalar(
        select(Kiosk).where(Kiosk.id == kiosk_id, Kiosk.branch_id == branch.id)
    )
    if found is None:
        abort(404)
    return found


@bp.get("/sucursales")
@staff_required(ADMIN)
def branches():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return redirect(url_for("admin.issuers"), 303)
    rows = db.session.scalars(scope.branches_query()).all()
    counts = open_tickets(db.session, [b.id for b in rows])
    return render(
        "admin/branches.html",
        "content",
        ec=scope.issuer().country == "EC",
        branches=rows,
        counts=counts,
        notice=request.args.get("aviso"),
    )


@bp.route("/sucursales/nueva", methods=["GET", "POST"])
@staff_required(ADMIN)
def branch_new():
    issuer = scope.issuer()
    form = form_class(issuer)()
    return _branch_form(form, Branch(issuer_id=issuer.id, active=True), "creada")


def _branch_form(form: BranchForm, branch: Branch, notice: str):
    """Create (`branch` new) or edit a branch: a 303 (or HX-Redirect) to its page once saved,
    else the form again with the messages next to the fields. An Ecuadorian branch's
    establecimiento and punto de emisión must be free (branch_forms.pair_problem)."""
    ec = isinstance(form, EcBranchForm)
    if form.validate_on_submit():
        if code_taken(db.session, branch.issuer_id, form.code.data, exclude=branch.id):
            form.code.errors = [CODE_TAKEN]
        if ec and (problem := pair_problem(db.session, branch, form.estab.data, form.pto_emi.data)):
            form[problem[0]].errors = [problem[1]]
        if not any(field.errors for field in form):
            fill(branch, form)
            db.session.add(branch)
            try:
                db.session.commit()
            except IntegrityError:  # the same code (or estab and pto_emi) at the same moment
                db.session.rollback()
                if ec and not code_taken(db.session, branch.issuer_id, form.code.data, branch.id):
                    form.pto_emi.errors = [PAIR_TAKEN]
                else:
                    form.code.errors = [CODE_TAKEN]
            else:
                return _done(url_for("admin.branch", branch_id=branch.id, aviso=notice))
    return render(
        "admin/branches_form.html",
        "dialog",
        status=_status(form),
        form=form,
        branch=branch if branch.id else None,
        ec=ec,
        in_dialog=is_htmx(),
    )


@bp.get("/sucursales/<int:branch_id>")
@staff_required(ADMIN)
def branch(branch_id: int):
    found = scope.branch(branch_id)
    kiosks = db.session.scalars(
        select(Kiosk).where(Kiosk.branch_id == found.id).order_by(Kiosk.created_at, Kiosk.id)
    ).all()
    return render(
        "admin/branches_detail.html",
        "content",
        branch=found,
        kiosks=kiosks,
        open_count=open_tickets(db.session, [found.id]).get(found.id, 0),
        notice=request.args.get("aviso"),
    )


@bp.route("/sucursales/<int:branch_id>/editar", methods=["GET", "POST"])
@staff_required(ADMIN)
def branch_edit(branch_id: int):
    found = scope.branch(branch_id)
    kind = form_class(found.issuer)
    form = kind(obj=found) if request.method == "GET" else kind()
    return _branch_form(form, found, "guardada")


@bp.post("/sucursales/<int:branch_id>/estado")
@staff_required(ADMIN)
def branch_active(branch_id: int):
    """Disable (active=0) or enable (active=1): a disabled branch leaves the customer's
    branch picker and the API refuses its tickets; its tickets and invoices stay."""
    found = scope.branch(branch_id)
    wanted = request.form.get("active")
    if wanted not in ("0", "1"):
        abort(400)
    found.active = wanted == "1"
    db.session.commit()
    notice = "activada" if found.active else "desactivada"
    return redirect(url_for("admin.branch", branch_id=found.id, aviso=notice), 303)


# --- Kiosks -------------------------------------------------------------------------------


@bp.route("/sucursales/<int:branch_id>/quioscos/nuevo", methods=["GET", "POST"])
@staff_required(ADMIN)
def kiosk_new(branch_id: int):
    found = scope.branch(branch_id)
    form = KioskForm()
    if form.validate_on_submit():
        kiosk = devices.create(db.session, found, form.name.data)
        db.session.commit()
        return _done(url_for("admin.kiosk_enrol", branch_id=found.id, kiosk_id=kiosk.id))
    return render(
        "admin/branches_kiosk_new.html",
        "dialog",
        status=_status(form),
        form=form,
        branch=found,
        in_dialog=is_htmx(),
    )


@bp.get("/sucursales/<int:branch_id>/quioscos/<int:kiosk_id>/alta")
@staff_required(ADMIN)
def kiosk_enrol(branch_id: int, kiosk_id: int):
    """The enrolment link of a pending kiosk and its QR: open it on the kiosk (it works
    once, and expires). Each visit signs a fresh link; all die when one is used."""
    found = scope.branch(branch_id)
    kiosk = _kiosk(found, kiosk_id)
    link = qr = None
    if kiosk.state == "pending":
        token = devices.enrol_token(current_app.config["SECRET_KEY"], kiosk)
        link = current_app.config["BASE_URL"].rstrip("/") + url_for("kiosk.enrol", token=token)
        qr = segno.make(link, error="m").svg_inline(
            scale=5, border=4, light="#fff", svgclass="qr", title=_("Código QR del enlace de alta")
        )
    response = render(
        "admin/branches_kiosk_enrol.html",
        "content",
        branch=found,
        device=kiosk,
        link=link,
        qr=qr,
        hours=current_app.config["KIOSK_ENROL_HOURS"],
    )
    response.headers["Cache-Control"] = "no-store"  # the link enrols a kiosk
    return response


@bp.route("/sucursales/<int:branch_id>/quioscos/<int:kiosk_id>/revocar", methods=["GET", "POST"])
@staff_required(ADMIN)
def kiosk_revoke(branch_id: int, kiosk_id: int):
    """Asks first (a page, or the dialog); the POST stops the device on its next request."""
    found = scope.branch(branch_id)
    kiosk = _kiosk(found, kiosk_id)
    form = FlaskForm()
    if form.validate_on_submit():
        devices.revoke(kiosk, datetime.now(UTC))
        db.session.commit()
        return _done(url_for("admin.branch", branch_id=found.id, aviso="revocado"))
    return render(
        "admin/branches_kiosk_revoke.html",
        "dialog",
        form=form,
        branch=found,
        device=kiosk,
        in_dialog=is_htmx(),
    )
