"""Wiring the domain to the app: the PAC, the issuer's signer, PDF rendering, the emails."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template

from webapp.cfdi.pac import Pac
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


def pac_for(issuer) -> Pac:
    """The stamping provider of `issuer`: for now the deployment's (see pac())."""
    return pac()


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
    return render_pdf(xml, branch_name=invoice.branch.name, sandbox=is_sandbox())


def signer_for(issuer):
    return issuer_signer(issuer)


def filename(invoice: Invoice, ext: str) -> str:
    return f"{invoice.issuer.rfc}_{invoice.serie}{invoice.folio}_{invoice.uuid}.{ext}"


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
