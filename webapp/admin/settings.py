"""Back office: the issuer's settings (/admin/emisor), issuer admins and the operator only.

One page with a form per concern, each posting to its own URL: fiscal data, invoicing policy,
the CSD (in a <dialog>), the PAC and its credentials, and the logo and main colour. A form
that does not pass comes back with the messages next to its fields and 422; one that passes
redirects (303) to the page with a notice. Secrets (the CSD's key and password, the PAC's
credentials) are encrypted at rest and never shown again.

An Ecuadorian issuer (country "EC") has SRI's data instead of the SAT's (RUC, razón social,
nombre comercial, dirección matriz, contabilidad, contribuyente especial, RIMPE) and a
signing certificate (.p12 and its password, /admin/emisor/firma) instead of the CSD; its
facturas go to SRI, so it has no PAC to choose. Its invoicing policy has SRI's formas de pago,
and neither serie and folio (each branch is an establecimiento and punto de emisión with its
own secuencial, /admin/sucursales) nor factura global.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flask import abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from webapp import branding, crypto, images
from webapp.admin import bp, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.admin.settings_forms import (
    PAC_LABELS,
    BillingForm,
    BrandForm,
    CsdForm,
    EcBillingForm,
    EcFiscalForm,
    FiscalForm,
    P12Form,
    PacForm,
    check_billing,
    check_billing_ec,
    check_fiscal,
    check_fiscal_ec,
    check_pac,
    normalized_legal_name,
)
from webapp.csd import EXPIRY_WARNING_DAYS, CSDError, store_csd, stored_info
from webapp.extensions import db
from webapp.fiscal.rfc import normalize_rfc
from webapp.htmx import is_htmx, render
from webapp.models import Invoice, Issuer, StaffRole
from webapp.sri import catalogs as sri_catalogs
from webapp.sri.keystore import store_p12
from webapp.sri.p12 import EXPIRY_WARNING_DAYS as P12_WARNING_DAYS
from webapp.sri.p12 import P12Error

NOTICES = {
    "fiscal": _l("Datos fiscales guardados."),
    "fiscal_rfc": _l(
        "Datos fiscales guardados. El RFC cambió: suba el CSD del nuevo RFC para poder facturar."
    ),
    "facturacion": _l("Política de facturación guardada."),
    "csd": _l("Certificado (CSD) guardado."),
    "sri": _l("Datos del SRI guardados."),
    "sri_ruc": _l(
        "Datos del SRI guardados. El RUC cambió: suba la firma electrónica (.p12) del nuevo RUC "
        "para poder facturar."
    ),
    "firma": _l("Firma electrónica (.p12) guardada."),
    "pac": _l("Proveedor de timbrado guardado."),
    "marca": _l("Logotipo y color guardados."),
}


def _is_ec(issuer: Issuer) -> bool:
    return issuer.country == "EC"


def _may_change_rfc() -> bool:
    member = current_staff()
    return member is not None and member.role is StaffRole.OPERATOR


def _highest_folio(issuer: Issuer):
    def highest(serie: str) -> int:
        query = select(func.max(Invoice.folio)).where(
            Invoice.issuer_id == issuer.id, Invoice.serie == serie
        )
        return db.session.scalar(query) or 0

    return highest


def _fiscal_form(issuer: Issuer, posted: bool = False) -> FiscalForm:
    if posted:
        form = FiscalForm()
    else:
        form = FiscalForm(
            formdata=None,
            rfc=issuer.rfc,
            legal_name=issuer.legal_name,
            regimen=issuer.regimen_fiscal,
            cp=issuer.cp,
        )
    if not _may_change_rfc():
        form.rfc.render_kw = dict(form.rfc.render_kw or {}, readonly=True)
        form.rfc.data = issuer.rfc
    form.fill_choices(form.rfc.data if posted and _may_change_rfc() else issuer.rfc)
    return form


def _ec_fiscal_form(issuer: Issuer, posted: bool = False) -> EcFiscalForm:
    if posted:
        form = EcFiscalForm()
    else:
        form = EcFiscalForm(formdata=None)
        form.fill_from(issuer)
    if not _may_change_rfc():
        form.ruc.render_kw = dict(form.ruc.render_kw or {}, readonly=True)
        form.ruc.data = issuer.rfc
    return form


def _p12_info(issuer: Issuer, now: datetime) -> dict | None:
    """What is shown of the stored .p12 (never the file nor its password), or None."""
    if not (issuer.p12_password_encrypted and issuer.p12_valid_to):  # p12_encrypted: deferred
        return None
    valid_to = issuer.p12_valid_to
    soon = now < valid_to <= now + timedelta(days=P12_WARNING_DAYS)
    return {
        "subject": issuer.p12_subject or "",
        "valid_to": valid_to,
        "expired": now >= valid_to,
        "expires_soon": soon,
        "days_left": (valid_to - now) // timedelta(days=1),
    }


def _billing_form(issuer: Issuer, posted: bool = False) -> BillingForm | EcBillingForm:
    kind = EcBillingForm if _is_ec(issuer) else BillingForm
    if posted:
        return kind()
    form = kind(formdata=None)
    form.fill_from(issuer)
    return form


def _pac_form(issuer: Issuer, posted: bool = False) -> PacForm:
    if posted:
        return PacForm()
    return PacForm(formdata=None, provider=issuer.pac_provider or "")


def _brand_form(issuer: Issuer, posted: bool = False) -> BrandForm:
    if posted:
        return BrandForm()
    return BrandForm(formdata=None, color=issuer.brand_color or "")


def _show(form, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        form[name].errors = [message]


def _page(issuer: Issuer, status: int = 200, **forms):
    """The settings page; `forms` holds the posted form (with its errors) by its name."""
    now = datetime.now(UTC)
    ec = _is_ec(issuer)
    csd = None if ec else stored_info(issuer)
    fiscal_form = forms.get("fiscal_form") or (
        _ec_fiscal_form(issuer) if ec else _fiscal_form(issuer)
    )
    context = {
        "issuer": issuer,
        "ec": ec,
        "p12": _p12_info(issuer, now) if ec else None,
        "p12_warning_days": P12_WARNING_DAYS,
        "rimpe_labels": sri_catalogs.RIMPE,
        "fiscal_form": fiscal_form,
        "billing_form": forms.get("billing_form") or _billing_form(issuer),
        "pac_form": forms.get("pac_form") or _pac_form(issuer),
        "brand_form": forms.get("brand_form") or _brand_form(issuer),
        "csd": csd,
        "csd_expired": csd is not None and now >= csd.valid_to,
        "csd_expires_soon": csd is not None and csd.expires_soon(now),
        "csd_days_left": csd.days_left(now) if csd else None,
        "warning_days": EXPIRY_WARNING_DAYS,
        "may_change_rfc": _may_change_rfc(),
        "pac_labels": PAC_LABELS,
        "pac_saved": bool(issuer.pac_credentials_encrypted),
        "notice": NOTICES.get(request.args.get("guardado", "")),
    }
    return render("admin/settings.html", "content", status=status, **context)


def _saved(what: str):
    url = url_for("admin.settings", guardado=what)
    if is_htmx():
        return "", 204, {"HX-Redirect": url}
    return redirect(url, 303)


@bp.get("/emisor")
@staff_required(StaffRole.ISSUER_ADMIN)
def settings():
    """Datos del emisor: every setting, secrets never shown."""
    return _page(scope.issuer())


@bp.post("/emisor/fiscal")
@staff_required(StaffRole.ISSUER_ADMIN)
def settings_fiscal():
    issuer = scope.issuer()
    if _is_ec(issuer):
        return _settings_fiscal_ec(issuer)
    form = _fiscal_form(issuer, posted=True)
    errors = check_fiscal(form, issuer, _may_change_rfc()) if form.validate_on_submit() else {}
    new_rfc = normalize_rfc(form.rfc.data) if _may_change_rfc() else issuer.rfc
    if form.is_submitted() and not errors and new_rfc != issuer.rfc:
        taken = db.session.scalar(select(Issuer.id).where(Issuer.rfc == new_rfc))
        if taken is not None:
            errors["rfc"] = _("Ese RFC ya es de otro emisor de la plataforma.")
    _show(form, errors)
    if not form.is_submitted() or any(f.errors for f in form):
        return _page(issuer, 422, fiscal_form=form)
    what = "fiscal"
    if new_rfc != issuer.rfc:
        # The CSD names the RFC: the old one cannot sign for the new RFC.
        issuer.rfc = new_rfc
        issuer.csd_certificate = issuer.csd_key_encrypted = issuer.csd_password_encrypted = None
        issuer.csd_number = issuer.csd_valid_from = issuer.csd_valid_to = None
        what = "fiscal_rfc"
    issuer.legal_name = normalized_legal_name(form.legal_name.data)
    issuer.regimen_fiscal = form.regimen.data.strip()
    issuer.cp = form.cp.data
    db.session.commit()
    return _saved(what)


def _settings_fiscal_ec(issuer: Issuer):
    """An Ecuadorian issuer's SRI data; the RUC (operator only) drops the .p12 when it
    changes, since the certificate names the RUC."""
    form = _ec_fiscal_form(issuer, posted=True)
    csrf_ok = form.validate_on_submit() or "csrf_token" not in form.errors
    may_change = _may_change_rfc()
    errors = check_fiscal_ec(form, may_change)
    new_ruc = (form.ruc.data or "") if may_change else issuer.rfc
    if "ruc" not in errors and new_ruc != issuer.rfc:
        taken = db.session.scalar(select(Issuer.id).where(Issuer.rfc == new_ruc))
        if taken is not None:
            errors["ruc"] = _("Ese RUC ya es de otro emisor de la plataforma.")
    _show(form, errors)
    if errors or not csrf_ok:
        return _page(issuer, 422, fiscal_form=form)
    what = "sri"
    if new_ruc != issuer.rfc:
        issuer.rfc = new_ruc
        issuer.p12_encrypted = issuer.p12_password_encrypted = None
        issuer.p12_subject = issuer.p12_valid_to = None
        what = "sri_ruc"
    issuer.legal_name = form.legal_name.data
    issuer.trade_name = form.trade_name.data or None
    issuer.head_office_address = form.head_office_address.data
    issuer.keeps_accounts = form.keeps_accounts.data == sri_catalogs.SI
    issuer.special_taxpayer = form.special_taxpayer.data or None
    issuer.rimpe = form.rimpe.data or None
    db.session.commit()
    return _saved(what)


@bp.post("/emisor/facturacion")
@staff_required(StaffRole.ISSUER_ADMIN)
def settings_billing():
    issuer = scope.issuer()
    form = _billing_form(issuer, posted=True)
    csrf_ok = form.validate_on_submit() or "csrf_token" not in form.errors
    for field in form:  # the fields are judged by check_billing, in Spanish
        if field.name != "csrf_token":
            field.errors = []
    ec = _is_ec(issuer)
    errors, policy = check_billing_ec(form) if ec else check_billing(form, _highest_folio(issuer))
    _show(form, errors)
    if errors or not csrf_ok:
        return _page(issuer, 422, billing_form=form)
    if not ec:
        issuer.serie, issuer.next_folio = form.serie.data, form.next_folio.data
        issuer.global_policy = form.global_policy.data
        issuer.global_periodicity = form.global_periodicity.data
    issuer.window_policy = policy
    issuer.formas_pago = ",".join(form.formas_pago.data)
    issuer.guest_invoicing = bool(form.guest_invoicing.data)
    db.session.commit()
    return _saved("facturacion")


# --- CSD ------------------------------------------------------------------------------------


def _date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def csd_message(error: CSDError, rfc: str) -> str:
    """The Spanish message of a refused upload."""
    if error.code == "expired":
        return _(
            "Este certificado venció el %(to)s (vigente desde el %(from_)s). "
            "Tramite un CSD nuevo en el portal del SAT.",
            to=_date(error.valid_to),
            from_=_date(error.valid_from),
        )
    if error.code == "not_yet_valid":
        return _(
            "Este certificado será vigente a partir del %(from_)s (hasta el %(to)s); "
            "súbalo cuando empiece su vigencia.",
            to=_date(error.valid_to),
            from_=_date(error.valid_from),
        )
    if error.code == "rfc":
        return _(
            "Este certificado es del RFC %(other)s, no del emisor (%(rfc)s).",
            other=error.rfc or "?",
            rfc=rfc,
        )
    return {
        "cer_format": _("El archivo no es un certificado (.cer) válido."),
        "key_format": _("El archivo no es una llave privada (.key) del SAT."),
        "password": _("La contraseña no abre esta llave privada. Revísela e intente de nuevo."),
        "mismatch": _("Esta llave privada no corresponde al certificado."),
        "fiel": _(
            "Este certificado es una e.firma (FIEL), que no sirve para facturar. "
            "Suba su Certificado de Sello Digital (CSD)."
        ),
        "not_csd": _("Este certificado no es un Certificado de Sello Digital (CSD)."),
    }.get(error.code, _("No se pudo leer el certificado."))


UPLOAD_MAX_BYTES = 256 * 1024
"""Largest body of an upload here (a CSD's files are about 2 KB each, a logo 50 KB at most);
the app-wide MAX_CONTENT_LENGTH still applies first. Larger: 413 (webapp.errors)."""


def _limit_upload() -> None:
    if (request.content_length or 0) > UPLOAD_MAX_BYTES:
        abort(413)


def _upload(field) -> bytes:
    data = field.data
    return data.read() if data is not None and hasattr(data, "read") else b""


def _csd_page(issuer: Issuer, form: CsdForm, status: int = 200):
    """The upload form: a page, or to htmx the `dialog` block shown in base.html's modal."""
    return render(
        "admin/settings_csd.html",
        "dialog",
        status=status,
        form=form,
        issuer=issuer,
        csd=stored_info(issuer),
        in_dialog=is_htmx(),
    )


@bp.route("/emisor/csd", methods=["GET", "POST"])
@staff_required(StaffRole.ISSUER_ADMIN)
def settings_csd():
    """Subir el CSD: .cer, .key and its password, judged before anything is stored."""
    issuer = scope.issuer()
    if _is_ec(issuer):  # an Ecuadorian issuer signs with a .p12: settings_p12
        abort(404)
    form = CsdForm()
    if request.method == "GET":
        return _csd_page(issuer, form)
    _limit_upload()
    if not form.validate_on_submit():
        return _csd_page(issuer, form, 422)
    cer, key, password = _upload(form.cer), _upload(form.key), form.password.data or ""
    if not cer:
        form.cer.errors = [_("Elija el archivo .cer del certificado.")]
    if not key:
        form.key.errors = [_("Elija el archivo .key de la llave privada.")]
    if not password:
        form.password.errors = [_("Escriba la contraseña de la llave privada.")]
    if not (cer and key and password):
        return _csd_page(issuer, form, 422)
    try:
        store_csd(issuer, cer, key, password, now=datetime.now(UTC))
    except CSDError as error:
        db.session.rollback()
        form[error.field].errors = [csd_message(error, issuer.rfc)]
        return _csd_page(issuer, form, 422)
    db.session.commit()
    return _saved("csd")


# --- Ecuador: the signing certificate (.p12) -----------------------------------------------


def _p12_page(issuer: Issuer, form: P12Form, status: int = 200):
    """The .p12 upload form: a page, or to htmx the `dialog` block (like the CSD's)."""
    return render(
        "admin/settings_p12.html",
        "dialog",
        status=status,
        form=form,
        issuer=issuer,
        in_dialog=is_htmx(),
    )


@bp.route("/emisor/firma", methods=["GET", "POST"])
@staff_required(StaffRole.ISSUER_ADMIN)
def settings_p12():
    """Subir la firma electrónica (.p12) and its password, judged before anything is stored
    (webapp.sri.keystore.store_p12): it must open, sign, name the issuer's RUC, be valid."""
    issuer = scope.issuer()
    if not _is_ec(issuer):  # a Mexican issuer signs with its CSD: settings_csd
        abort(404)
    form = P12Form()
    if request.method == "GET":
        return _p12_page(issuer, form)
    _limit_upload()
    if not form.validate_on_submit():
        return _p12_page(issuer, form, 422)
    data, password = _upload(form.p12), form.password.data or ""
    if not data:
        form.p12.errors = [_("Elija el archivo .p12 de su firma electrónica.")]
    if not password:
        form.password.errors = [_("Escriba la contraseña de la firma electrónica.")]
    if not (data and password):
        return _p12_page(issuer, form, 422)
    try:
        store_p12(issuer, data, password, now=datetime.now(UTC))
    except P12Error as error:
        db.session.rollback()
        field = form.password if error.code == "password" else form.p12
        field.errors = [str(error)]
        return _p12_page(issuer, form, 422)
    db.session.commit()
    return _saved("firma")


# --- PAC ------------------------------------------------------------------------------------


@bp.post("/emisor/pac")
@staff_required(StaffRole.ISSUER_ADMIN)
def settings_pac():
    issuer = scope.issuer()
    form = _pac_form(issuer, posted=True)
    if not form.validate_on_submit():
        return _page(issuer, 422, pac_form=form)
    errors, credentials = check_pac(
        form, issuer.pac_provider, bool(issuer.pac_credentials_encrypted)
    )
    _show(form, errors)
    if errors:
        return _page(issuer, 422, pac_form=form)
    issuer.pac_provider = form.provider.data or None
    if credentials is not None:
        issuer.pac_credentials_encrypted = (
            crypto.encrypt(json.dumps(credentials).encode()) if credentials else None
        )
    db.session.commit()
    return _saved("pac")


# --- Logo and colour ------------------------------------------------------------------------


def logo_message(problem: str, size: tuple[int, int] | None = None) -> str:
    if problem == "pixels" and size and size[0] * size[1] > images.MAX_PIXELS:
        return _(
            "El logotipo mide %(width)s × %(height)s píxeles; se admiten hasta 4 megapíxeles "
            "(por ejemplo, 2000 × 2000). Redúzcalo e intente de nuevo.",
            width=size[0],
            height=size[1],
        )
    return {
        "empty": _("El archivo está vacío."),
        "too_big": _("El logotipo debe pesar como máximo 50 KB."),
        "format": _("El logotipo debe ser una imagen PNG o SVG."),
        "pixels": _(
            "El logotipo mide más de 4 megapíxeles (por ejemplo, 2000 × 2000 píxeles). "
            "Redúzcalo e intente de nuevo."
        ),
        "damaged": _("El archivo PNG está dañado o incompleto. Expórtelo de nuevo."),
        "svg_invalid": _("El archivo SVG no es válido."),
        "svg_unsafe": _(
            "El SVG contiene scripts, eventos, entidades o referencias externas; "
            "súbalo sin ellos o en PNG."
        ),
    }[problem]


@bp.post("/emisor/marca")
@staff_required(StaffRole.ISSUER_ADMIN)
def settings_brand():
    issuer = scope.issuer()
    _limit_upload()
    form = _brand_form(issuer, posted=True)
    if not form.validate_on_submit():
        return _page(issuer, 422, brand_form=form)
    color, problem = branding.check_color(form.color.data)
    if problem == "format":
        form.color.errors = [_("Escriba el color como #rrggbb, por ejemplo #0b5d3b.")]
    elif problem == "contrast":
        ratio = branding.contrast_with_white(color)
        form.color.errors = [
            _(
                "El texto blanco sobre %(color)s tiene un contraste de %(ratio)s:1; se necesita "
                "al menos 4.5:1 (WCAG AA). Elija un color más oscuro.",
                color=color,
                ratio=f"{ratio:.2f}",
            )
        ]
    upload = _upload(form.logo)
    data = logo_type = None
    if upload:
        logo_type, data, logo_problem = branding.accept_logo(upload)  # a PNG comes re-encoded
        if logo_problem:
            form.logo.errors = [logo_message(logo_problem, images.png_size(upload))]
    if any(f.errors for f in form):
        return _page(issuer, 422, brand_form=form)
    issuer.brand_color = color
    if data:
        issuer.logo, issuer.logo_type = data, logo_type
    elif form.remove_logo.data:
        issuer.logo = issuer.logo_type = None
    db.session.commit()
    return _saved("marca")
