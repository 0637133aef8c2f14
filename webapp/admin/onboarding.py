"""The issuer admin's onboarding checklist (/admin/alta): fiscal data, CSD (the .p12 in
Ecuador), PAC and its credentials (Mexico), first branch (retail) or billing branch
(services), invoicing policy reviewed. Each item is ticked from the issuer's data
(webapp.platform.onboarding) and links to its settings page; once every item is done,
"Publicar" offers the issuer to customers."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from webapp.admin import bp, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import StaffRole
from webapp.platform import onboarding
from webapp.security import audit

ADMIN = StaffRole.ISSUER_ADMIN

# key: (label, endpoint, anchor)
ITEMS = {
    "fiscal": (_l("Datos fiscales"), "admin.settings", "sec-fiscal"),
    "csd": (_l("Certificado de sello digital (CSD)"), "admin.settings_csd", ""),
    "p12": (_l("Firma electrónica (.p12)"), "admin.settings_p12", ""),
    "pac": (_l("Proveedor de timbrado (PAC) y sus credenciales"), "admin.settings", "sec-pac"),
    "branch": (_l("Primera sucursal"), "admin.branches", ""),
    "billing_branch": (_l("Sucursal de facturación"), "admin.settings", ""),
    "policy": (_l("Política de facturación revisada"), "admin.settings", "sec-facturacion"),
}
NOTICES = {
    "politica": _l("Política de facturación confirmada."),
    "publicado": _l("¡Listo! Sus clientes ya pueden facturar con usted."),
}


def _page(status: int = 200, error: str | None = None):
    issuer = scope.issuer()
    items = onboarding.checklist(db.session, issuer)
    rows = []
    for item in items:
        label, endpoint, anchor = ITEMS[item.key]
        url = url_for(endpoint) + (f"#{anchor}" if anchor else "")
        rows.append({"key": item.key, "label": label, "url": url, "done": item.done})
    return render(
        "admin/onboarding.html",
        "content",
        status=status,
        issuer=issuer,
        items=rows,
        complete=all(item.done for item in items),
        form=FlaskForm(),
        error=error,
        notice=NOTICES.get(request.args.get("aviso", "")),
    )


@bp.get("/alta")
@staff_required(ADMIN)
def onboarding_checklist():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return redirect(url_for("admin.issuers"), 303)
    return _page()


@bp.post("/alta/politica")
@staff_required(ADMIN)
def onboarding_policy():
    """ "Confirmar política de facturación": the admin reviewed the invoicing policy."""
    scope.issuer()
    if not FlaskForm().validate_on_submit():
        return _page(400)
    audit.record(onboarding.POLICY_CONFIRMED, None, staff=current_staff())
    db.session.commit()
    return redirect(url_for("admin.onboarding_checklist", aviso="politica"), 303)


@bp.post("/alta/publicar")
@staff_required(ADMIN)
def onboarding_publish():
    issuer = scope.issuer()
    if not FlaskForm().validate_on_submit():
        return _page(400)
    try:
        onboarding.publish(db.session, issuer)
    except onboarding.NotComplete:
        return _page(422, _l("Complete cada paso de la lista antes de publicar."))
    db.session.commit()
    return redirect(url_for("admin.onboarding_checklist", aviso="publicado"), 303)
