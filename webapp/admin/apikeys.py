"""Back office: the issuer's API keys for the point of sale (/admin/api).

A new key is shown once, on the answer to the POST that made it (never stored in clear, never
put in a URL or the session); the list shows its prefix, creation, last use and revocation.
Issuer admins and the operator only; every key is the issuer's in scope (others' are a 404).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from webapp.admin import bp, scope
from webapp.admin.auth import staff_required
from webapp.api.keys import make_key
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import ApiKey, StaffRole

ADMIN = StaffRole.ISSUER_ADMIN


class ApiKeyForm(FlaskForm):
    name = StringField(
        _l("Nombre de la clave"),
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[
            DataRequired(_l("Escriba un nombre para reconocer la clave, p. ej. «Caja 1».")),
            Length(max=80, message=_l("Hasta 80 caracteres.")),
        ],
        render_kw={"maxlength": 80, "autocomplete": "off"},
    )


def _keys():
    return db.session.scalars(
        select(ApiKey).where(ApiKey.issuer_id == scope.issuer().id).order_by(ApiKey.id.desc())
    ).all()


@bp.route("/api", methods=["GET", "POST"])
@staff_required(ADMIN)
def api_keys():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return redirect(url_for("admin.issuers"), 303)
    issuer = scope.issuer()
    form = ApiKeyForm()
    if form.validate_on_submit():
        row, key = make_key(db.session, issuer, form.name.data)
        db.session.commit()
        response = render("admin/api_keys_created.html", "content", key=key, row=row)
        response.headers["Cache-Control"] = "no-store"
        return response
    status = 422 if form.errors else 200
    return render(
        "admin/api_keys.html",
        "content",
        status=status,
        form=form,
        keys=_keys(),
        notice=request.args.get("aviso"),
    )


@bp.post("/api/<int:key_id>/revocar")
@staff_required(ADMIN)
def api_key_revoke(key_id: int):
    row = db.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.issuer_id == scope.issuer().id)
    )
    if row is None:
        abort(404)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        db.session.commit()
    return redirect(url_for("admin.api_keys", aviso="revocada"), 303)
