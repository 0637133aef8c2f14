"""An issuer's aviso de privacidad for its customers (/aviso-de-privacidad/<slug>), linked
in the footer of its pages and at registration; /aviso-de-privacidad is the portal's (the
platform operator's notice). An issuer that has not written its own shows a general notice
built from its fiscal data."""

from __future__ import annotations

from flask import abort, render_template
from sqlalchemy import select

from webapp.extensions import db
from webapp.main import bp
from webapp.models import Issuer
from webapp.platform import privacy


@bp.get("/aviso-de-privacidad/<slug>")
def privacy_notice(slug: str):
    issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
    if issuer is None or issuer.onboarding_pending:
        abort(404)
    notice = privacy.current(db.session, issuer.id)
    return render_template("main/privacy_notice.html", issuer=issuer, notice=notice)


@bp.get("/aviso-de-privacidad")
def privacy_portal():
    notice = privacy.current(db.session)
    return render_template("main/privacy_notice.html", issuer=None, notice=notice)
