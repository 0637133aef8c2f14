"""CFDI 4.0 without Flask: a draft becomes a signed, XSD-valid, stamped invoice and its PDF.

    from webapp.cfdi import Draft, Line, build, sign, validate, render_pdf
    from webapp.cfdi.pac.sandbox import SandboxPac

    xml = sign(build(draft), signer)          # signed CFDI 4.0, UTF-8 bytes
    validate(xml)                             # SAT XSD (schema compiled once per process)
    stamped = SandboxPac(instance_dir).stamp(xml)
    pdf = render_pdf(stamped.xml, branch_name="Sucursal Centro", sandbox=True)

Money is Decimal throughout; `webapp.cfdi.amounts` is the only place that rounds.
"""

from webapp.cfdi.amounts import (
    TaxGroup,
    Totals,
    line_amount,
    line_importe,
    line_tax,
    ticket_total,
    totals,
)
from webapp.cfdi.build import build, sign
from webapp.cfdi.draft import Draft, Line
from webapp.cfdi.pdf import render_pdf, verification_url
from webapp.cfdi.words import amount_in_words
from webapp.cfdi.xsd import InvalidCfdi, validate

__all__ = [
    "Draft",
    "InvalidCfdi",
    "Line",
    "TaxGroup",
    "Totals",
    "amount_in_words",
    "build",
    "line_amount",
    "line_importe",
    "line_tax",
    "render_pdf",
    "sign",
    "ticket_total",
    "totals",
    "validate",
    "verification_url",
]
