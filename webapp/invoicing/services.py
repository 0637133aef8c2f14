"""Wiring the domain to the app: the PAC, the issuer's signer, PDF rendering, the emails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import current_app, render_template
from satcfdi.models import Signer

from webapp.cfdi.pac import Pac, PacError
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.cfdi.pdf import render_pdf
from webapp.csd import issuer_signer
from webapp.issuing import retention
from webapp.mail import queue_mail
from webapp.models import Invoice


def pac() -> Pac:
    """The configured stamping provider, one per process."""
    app = current_app._get_current_object()
    if "pac" not in app.extensions:
        name = app.config["PAC"]
        if name == "sandbox":
            app.extensions["pac"] = SandboxPac(Path(app.config["PAC_SANDBOX_DIR"]))
        elif name == "finkok":
            from webapp.cfdi.pac.finkok import FinkokPac

            app.extensions["pac"] = FinkokPac.from_settings(app.config)
        elif name == "sw":
            from webapp.cfdi.pac.sw import SwPac

            app.extensions["pac"] = SwPac.from_settings(app.config)
        else:  # config.check refuses unknown names at start-up
            raise RuntimeError(f"unknown PAC {name!r}")
    return app.extensions["pac"]


PAC_CREDENTIALS = {"finkok": ("username", "password"), "sw": ("token",)}
"""The credentials each provider takes from an issuer (webapp.admin.settings stores them)."""
_ISSUER_PACS_MAX = 128


def _issuer_settings(config, provider: str, credentials: dict) -> dict:
    """The app's PAC settings with the issuer's provider and credentials in place. The
    deployment's URLs belong to its own provider: they are kept only for that one."""
    settings = dict(config)
    settings["PAC"] = provider
    if provider != config["PAC"]:
        settings.update(PAC_URL=None, PAC_API_URL=None)
    settings.update(PAC_USERNAME=None, PAC_PASSWORD=None, PAC_TOKEN=None)
    settings.update({f"PAC_{name.upper()}": value for name, value in credentials.items()})
    return settings


def pac_for(issuer) -> Pac:
    """The stamping provider of `issuer`: its own (Issuer.pac_provider, with its encrypted
    credentials) when set, else the deployment's (see pac()). Providers that cancel with the
    issuer's CSD (Finkok, SW) get it through `with_signer`, loaded when a cancellation is
    signed. Cached per issuer and credentials, so replaced credentials take effect at once."""
    import hashlib
    import json

    from webapp import crypto

    provider = getattr(issuer, "pac_provider", None)
    app = current_app._get_current_object()
    cache = app.extensions.setdefault("issuer_pacs", {})
    if not provider or (provider == app.config["PAC"] and not issuer.pac_credentials_encrypted):
        shared = pac()
        key = (issuer.id, app.config["PAC"], id(shared))  # a replaced provider is not reused
        if key not in cache:
            acting = shared.with_signer(_signer_loader(issuer.id))
            if acting is shared:  # the sandbox signs nothing with the issuer's CSD
                return shared
            _remember(cache, key, acting)
        return cache[key]
    sealed = bytes(issuer.pac_credentials_encrypted or b"")
    key = (issuer.id, provider, hashlib.sha256(sealed).hexdigest())
    if key not in cache:
        credentials = json.loads(crypto.decrypt(sealed)) if sealed else {}
        settings = _issuer_settings(app.config, provider, credentials)
        if provider == "sandbox":
            built: Pac = SandboxPac(Path(app.config["PAC_SANDBOX_DIR"]))
        elif provider == "finkok":
            from webapp.cfdi.pac.finkok import FinkokPac

            built = FinkokPac.from_settings(settings)
        elif provider == "sw":
            from webapp.cfdi.pac.sw import SwPac

            built = SwPac.from_settings(settings)
        else:
            raise RuntimeError(f"unknown PAC {provider!r} for issuer {issuer.rfc}")
        _remember(cache, key, built.with_signer(_signer_loader(issuer.id)))
    return cache[key]


def _remember(cache: dict, key: tuple, built: Pac) -> None:
    if len(cache) >= _ISSUER_PACS_MAX:
        cache.pop(next(iter(cache)))
    cache[key] = built


def _signer_loader(issuer_id: int) -> Callable[[], Signer]:
    """Loads the CSD of the issuer `issuer_id` as stored now (a replaced CSD is used at once);
    PacError("sin-csd") when it has none or it cannot be opened."""

    def load() -> Signer:
        from webapp.crypto import DecryptionError
        from webapp.csd import CSDError
        from webapp.extensions import db
        from webapp.models import Issuer

        issuer = db.session.get(Issuer, issuer_id)
        if issuer is None:
            raise PacError("sin-csd", "El emisor ya no existe")
        try:
            return signer_for(issuer)
        except (CSDError, DecryptionError) as exc:
            raise PacError(
                "sin-csd",
                "No se pudo usar el CSD del emisor para firmar la cancelación: cárguelo de "
                "nuevo en los ajustes del emisor",
            ) from exc

    return load


def is_sandbox() -> bool:
    return current_app.config["PAC"] == "sandbox"


def pac_status() -> tuple[str, bool, str]:
    """(provider name, usable, detail) for the dashboard: the sandbox's own certificate
    loads; a remote provider is configured (its outages show as failed invoices)."""
    name = current_app.config["PAC"]
    try:
        provider = pac()
        if isinstance(provider, SandboxPac):
            provider.signer()
    except Exception as exc:  # noqa: BLE001 (shown to the operator, not raised)
        return name, False, str(exc)[:200]
    return name, True, ""


def pdf_for(invoice: Invoice, xml: bytes) -> bytes:
    issuer = invoice.issuer
    return render_pdf(
        xml,
        branch_name=invoice.branch.name,
        sandbox=is_sandbox(),
        logo=issuer.logo if issuer.logo_type == "image/png" else None,
        color=issuer.brand_color,
    )


def signer_for(issuer):
    return issuer_signer(issuer)


def filename(invoice: Invoice, ext: str) -> str:
    return f"{invoice.issuer.rfc}_{invoice.serie}{invoice.folio}_{invoice.uuid}.{ext}"


def mail_when_stamped(session) -> Callable[[Invoice], None]:
    """`on_stamped` for `issue.stamp`: queue the invoice's email to its delivery address, in
    the commit that records the stamp."""

    def queue(invoice: Invoice) -> None:
        if invoice.delivery_email:
            queue_invoice_mail(session, invoice, invoice.delivery_email)

    return queue


def queue_invoice_mail(session, invoice: Invoice, to: list[str] | str) -> None:
    """Queue the invoice's email with its XML and PDF, archived or not (committed by the
    caller)."""
    context = {"invoice": invoice, "sandbox": is_sandbox()}
    files = retention.files_of(session, invoice)
    queue_mail(
        session,
        to,
        render_template("invoicing/email/subject.txt", **context).strip(),
        render_template("invoicing/email/body.txt", **context),
        attachments=[
            (filename(invoice, ext), mimetype, data)
            for ext, mimetype, data in (
                ("xml", "application/xml", files.xml),
                ("pdf", "application/pdf", files.pdf),
            )
            if data is not None
        ],
    )
