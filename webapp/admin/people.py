"""Back office: the issuer's staff (Personal). Issuer admins and the operator list them,
invite new ones (an issuer admin, or branch staff of one of the issuer's branches: they get
the "choose your password" email) and disable or enable them. Disabling ends their sessions
at once (session_version); nobody disables themself.

Staff emails are unique across the platform; a taken one gets a message that does not say
which issuer has it.
"""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from webapp.accounts.forms import RfcEmailForm
from webapp.admin import bp, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.admin.routes import password_link
from webapp.admin.staff import StaffError, create_staff
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.mail import queue_mail
from webapp.models import Branch, StaffMember, StaffRole
from webapp.security import audit

ADMIN = StaffRole.ISSUER_ADMIN
EMAIL_TAKEN = _l("Ese correo ya no se puede usar para el panel del comercio. Escriba otro.")
ROLE_NAMES = {
    StaffRole.ISSUER_ADMIN: _l("Administrador del emisor"),
    StaffRole.BRANCH_STAFF: _l("Personal de sucursal"),
}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class InviteForm(FlaskForm):
    email = EmailField(
        _l("Correo electrónico"),
        filters=[_strip],
        render_kw={"autocomplete": "off", "maxlength": 254, "autocapitalize": "none"},
    )
    name = StringField(_l("Nombre"), filters=[_strip], render_kw={"maxlength": 120})
    role = SelectField(
        _l("Rol"),
        choices=[SelectChoice(role.value, label) for role, label in ROLE_NAMES.items()],
        default=StaffRole.BRANCH_STAFF.value,
        validate_choice=False,
    )
    branch = SelectField(_l("Sucursal"), choices=[], validate_choice=False)

    validate_email = RfcEmailForm.validate_email

    def validate_name(self, field) -> None:
        if len(field.data or "") > 120:
            raise ValidationError(_l("El nombre es demasiado largo."))

    def validate_role(self, field) -> None:
        if field.data not in {role.value for role in ROLE_NAMES}:
            raise ValidationError(_l("Elija un rol de la lista."))

    def validate_branch(self, field) -> None:
        if self.role.data != StaffRole.BRANCH_STAFF.value:
            return
        if field.data not in {choice.value for choice in field.choices if choice.value}:
            raise ValidationError(_l("Elija la sucursal de esta persona."))


def _invite_form(branches: list[Branch]) -> InviteForm:
    form = InviteForm()
    form.branch.choices = [SelectChoice("", _l("— Ninguna (administradores) —"))] + [
        SelectChoice(str(b.id), f"{b.code} · {b.name}") for b in branches
    ]
    return form


def _send_invitation(member: StaffMember) -> None:
    """The "choose your password" email (admin/email/password), committed by the caller."""
    context = dict(
        member=member,
        base_url=current_app.config["BASE_URL"],
        link=password_link(member),  # an invitation: STAFF_INVITATION_HOURS
        hours=current_app.config["STAFF_INVITATION_HOURS"],
    )
    queue_mail(
        db.session,
        member.email,
        render_template("admin/email/password.subject.txt", **context).strip(),
        render_template("admin/email/password.txt", **context),
    )


def _member(member_id: int) -> StaffMember:
    """A staff member of the issuer in scope, or 404."""
    found = db.session.scalar(
        select(StaffMember).where(
            StaffMember.id == member_id, StaffMember.issuer_id == scope.issuer().id
        )
    )
    if found is None:
        abort(404)
    return found


@bp.get("/personal")
@staff_required(ADMIN)
def people():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return redirect(url_for("admin.issuers"), 303)
    members = db.session.scalars(
        select(StaffMember)
        .where(StaffMember.issuer_id == scope.issuer().id)
        .order_by(StaffMember.email)
    ).all()
    return render(
        "admin/people.html",
        "content",
        members=members,
        roles=ROLE_NAMES,
        me=current_staff(),
        notice=request.args.get("aviso"),
    )


@bp.route("/personal/nuevo", methods=["GET", "POST"])
@staff_required(ADMIN)
def person_new():
    issuer = scope.issuer()
    branches = db.session.scalars(
        select(Branch)
        .where(Branch.issuer_id == issuer.id, Branch.active.is_(True))
        .order_by(Branch.code)
    ).all()
    form = _invite_form(branches)
    if form.validate_on_submit():
        role = StaffRole(form.role.data)
        branch = None
        if role is StaffRole.BRANCH_STAFF:
            branch = next(b for b in branches if str(b.id) == form.branch.data)
        try:
            member = create_staff(
                db.session, form.email.data, role, issuer, branch, name=form.name.data
            )
            _send_invitation(member)
            audit.record("staff_invited", None, staff=member)
            db.session.commit()
        except (StaffError, IntegrityError):  # taken (perhaps at the same moment)
            db.session.rollback()
            form.email.errors = [EMAIL_TAKEN]
        else:
            url = url_for("admin.people", aviso="invitado")
            if is_htmx():
                return "", 204, {"HX-Redirect": url}
            return redirect(url, 303)
    status = 422 if request.method == "POST" and form.errors and not is_htmx() else 200
    return render(
        "admin/people_form.html",
        "dialog",
        status=status,
        form=form,
        in_dialog=is_htmx(),
    )


@bp.post("/personal/<int:member_id>/estado")
@staff_required(ADMIN)
def person_active(member_id: int):
    """Disable (active=0: their sessions end at once) or enable (active=1)."""
    member = _member(member_id)
    wanted = request.form.get("active")
    if wanted not in ("0", "1"):
        abort(400)
    if member.id == current_staff().id:
        return redirect(url_for("admin.people", aviso="usted"), 303)
    if wanted == "0" and member.active:
        member.active = False
        member.session_version += 1
        audit.record("staff_disabled", None, staff=member)
    elif wanted == "1" and not member.active:
        member.active = True
        audit.record("staff_enabled", None, staff=member)
    db.session.commit()
    return redirect(
        url_for("admin.people", aviso="desactivado" if wanted == "0" else "activado"), 303
    )


@bp.post("/personal/<int:member_id>/invitacion")
@staff_required(ADMIN)
def person_reinvite(member_id: int):
    """Send the invitation again to someone who has not chosen a password yet."""
    member = _member(member_id)
    if member.active and member.password_hash is None:
        _send_invitation(member)
        db.session.commit()
    return redirect(url_for("admin.people", aviso="reenviado"), 303)
