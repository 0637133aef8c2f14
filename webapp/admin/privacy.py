"""Aviso de privacidad (seed 003, PASO 2): issuer staff accept the platform's current notice
before anything else of the back office opens; the issuer admin writes the notice its own
customers read (/aviso-de-privacidad/<slug>, webapp/main/privacy.py).

The gate is a before_request of the back office: a signed-in issuer staff member who has not
accepted the newest version of the platform's notice is sent to /admin/aviso-de-privacidad
(htmx requests get HX-Redirect), except for signing out and the notice itself. The operator is
exempt. No platform notice published: no gate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from flask import redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, Length

from webapp.admin import auth, bp, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.extensions import db
from webapp.htmx import redirect_any
from webapp.models import PrivacyNotice, StaffRole
from webapp.platform import privacy
from webapp.security.web import local_path

# Pages open before the notice is accepted (those without a signed-in member pass anyway).
OPEN = {"admin.sign_out", "admin.privacy_gate", "admin.privacy_text", "admin.sign_in"}
ACCEPTED = "privacy_accepted"  # session: "<notice id>:<staff session hash>" once checked


def client_address() -> str:
    """The address the request came from, as the audit log stores it (after ProxyFix)."""
    return (request.remote_addr or "")[:45]


def _session_mark(notice_id: int) -> str:
    staff = str(session.get(auth.SESSION_KEY, ""))
    return f"{notice_id}:{hashlib.sha256(staff.encode()).hexdigest()[:16]}"


def blocked() -> bool:
    """Whether the signed-in staff member still has to accept the platform's current notice
    (remembered in the session once checked, so most pages ask one small query)."""
    member = current_staff()
    if member is None or not privacy.must_accept(member):
        return False
    notice_id = privacy.current_id(db.session)
    if notice_id is None:
        return False
    mark = _session_mark(notice_id)
    if session.get(ACCEPTED) == mark:
        return False
    if privacy.has_accepted(db.session, member.id, notice_id):
        session[ACCEPTED] = mark
        return False
    return True


@bp.before_request
def _privacy_gate():
    if request.endpoint in OPEN or request.endpoint is None or not blocked():
        return None
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect_any(url_for("admin.privacy_gate", next=target))


class AcceptForm(FlaskForm):
    accept = BooleanField(
        _l("He leído y estoy de acuerdo con el Aviso de Privacidad de Datos"),
        validators=[DataRequired(_l("Marque la casilla para aceptar el aviso de privacidad."))],
    )


def _safe_next(target: str | None) -> str:
    path = local_path(target)
    if not path or not path.startswith("/admin") or path.startswith("/admin/aviso"):
        return url_for("admin.home")
    return path


@bp.route("/aviso-de-privacidad", methods=["GET", "POST"])
@staff_required()
def privacy_gate():
    """PASO 2: the notice's link and the check; accepting stores who, which version, when
    and from where."""
    member = current_staff()
    notice = privacy.current(db.session)
    back = _safe_next(request.args.get("next"))
    if notice is None or not privacy.must_accept(member):
        return redirect(back, 303)
    accepted = privacy.has_accepted(db.session, member.id, notice.id)
    form = AcceptForm()
    if request.method == "POST":
        if form.validate_on_submit():
            privacy.accept(db.session, member, notice, client_address(), datetime.now(UTC))
            db.session.commit()
            session[ACCEPTED] = _session_mark(notice.id)
            return redirect(back, 303)
    elif accepted:
        return redirect(back, 303)
    return render_template(
        "admin/privacy_gate.html",
        form=form,
        notice=notice,
        next=request.args.get("next"),
        privacy_gate=True,
    ), (422 if form.errors else 200)


@bp.get("/aviso-de-privacidad/texto")
@staff_required()
def privacy_text():
    """Leer aviso de privacidad: the platform's current notice."""
    notice = privacy.current(db.session)
    return render_template("admin/privacy_text.html", notice=notice, privacy_gate=True)


class CustomerNoticeForm(FlaskForm):
    body = TextAreaField(
        _l("Texto del aviso de privacidad para sus clientes"),
        validators=[
            DataRequired(_l("Escriba el texto del aviso de privacidad.")),
            Length(max=50000, message=_l("El texto es demasiado largo.")),
        ],
        render_kw={"rows": 18},
    )


@bp.route("/emisor/aviso-de-privacidad", methods=["GET", "POST"])
@staff_required(StaffRole.ISSUER_ADMIN)
def privacy_customers():
    """The notice the issuer's customers read: each save publishes a new version."""
    issuer = scope.issuer()
    current: PrivacyNotice | None = privacy.current(db.session, issuer.id)
    form = CustomerNoticeForm()
    if request.method == "GET":
        form.body.data = current.body if current else ""
    elif form.validate_on_submit():
        privacy.publish(db.session, issuer.id, form.body.data, datetime.now(UTC))
        db.session.commit()
        return redirect(url_for("admin.privacy_customers", guardado=1), 303)
    return render_template(
        "admin/privacy_customers.html",
        form=form,
        issuer=issuer,
        current=current,
        saved=bool(request.args.get("guardado")),
    ), (422 if form.errors else 200)
