"""CFDI 4.0 without Flask: a draft becomes a signed, XSD-valid, stamped invoice and its PDF.

    from webapp.cfdi import Draft, Line, build, sign, validate, render_pdf
    from webapp.cfdi.pac.sandbox import SandboxPac

    xml = sign(build(draft), signer)          # signed CFDI 4.0, UTF-8 bytes
    validate(xml)                             # SAT XSD (schema compiled once per process)
    stamped = SandboxPac(instance_dir).stamp(xml)
    pdf = render_pdf(stamped.xml, branch_name="Sucursal Centro", sandbox=True)

Money is Decimal throughout; `webapp.cfdi.amounts` is the only place that rounds.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use (PEP 562): `webapp.cfdi.amounts` alone must not pull in satcfdi,
# lxml's schema or xhtml2pdf (half a second of imports for the demo loader).
_EXPORTS = {
    "Draft": "draft",
    "Line": "draft",
    "TaxGroup": "amounts",
    "Totals": "amounts",
    "line_amount": "amounts",
    "line_importe": "amounts",
    "line_tax": "amounts",
    "ticket_total": "amounts",
    "totals": "amounts",
    "BuildError": "builder",
    "build": "builder",
    "sign": "builder",
    "InvalidCfdi": "xsd",
    "validate": "xsd",
    "render_pdf": "pdf",
    "verification_url": "pdf",
    "amount_in_words": "words",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
