"""An Ecuadorian issuer's invoice as an SRI factura (webapp.sri): what the stamping road signs
and sends to SRI instead of a CFDI when `Issuer.country == "EC"`.

    lineas = lineas_of(tickets)                  # the tickets' lines with SRI's IVA codes
    amounts = totals(lineas)                     # subtotal, IVA, importe total (USD)
    factura = factura_of(invoice, ambiente)      # the whole document of a reserved invoice
    xml, clave = signed_xml(invoice, key, ambiente)   # built, signed, XSD-checked

The invoice row says what the factura says: `serie` is "estab-ptoEmi" (its branch's, taken
when reserved), `folio` the secuencial, `fecha` the emission moment (its date in Ecuador is
the fechaEmision), `receptor_*` the comprador (receptor_id_type is SRI's tipo de
identificación). Tickets carry Mexican-style tax columns, read for Ecuador as: objeto_imp
"01" → no objeto de IVA (6); tax_factor "Exento" → exento (7); else the rate: 0.15 → IVA 15 %
(4), 0.05 → 5 % (5), 0 → 0 % (0). Any other rate cannot be an SRI line (FacturaError).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from webapp.models import Invoice, Issuer, Ticket, TicketLine
from webapp.sri import catalogs
from webapp.sri import factura as sri
from webapp.sri.p12 import SigningKey
from webapp.sri.signing import sign
from webapp.sri.xsd import validate

clean_text = sri.clean_text  # free text as SRI's schema takes it (control characters out)

ECUADOR = timezone(timedelta(hours=-5), "ECT")  # mainland Ecuador, no daylight saving time
_RATES = {
    Decimal("0.15"): catalogs.IVA_15,
    Decimal("0.05"): catalogs.IVA_5,
    Decimal("0"): catalogs.IVA_0,
}


def codigo_porcentaje(objeto_imp: str, tax_factor: str | None, tax_rate: Decimal | None) -> str:
    """SRI's codigoPorcentaje of a ticket line's tax columns (module docstring)."""
    if objeto_imp == "01":
        return catalogs.NO_OBJETO_IVA
    if (tax_factor or "").lower() == "exento":
        return catalogs.EXENTO_IVA
    rate = Decimal(tax_rate or 0).normalize()
    code = _RATES.get(rate if rate else Decimal("0"))
    if code is None:
        raise sri.FacturaError(f"la tasa de IVA {rate} no es una tarifa del SRI vigente")
    return code


def linea_of(line: TicketLine, codigo: str) -> sri.Linea:
    return sri.Linea(
        codigo_principal=codigo[:25],
        descripcion=line.description,
        cantidad=Decimal(line.quantity),
        precio_unitario=Decimal(line.unit_price),
        codigo_porcentaje=codigo_porcentaje(line.objeto_imp, line.tax_factor, line.tax_rate),
    )


def lineas_of(tickets: list[Ticket]) -> list[sri.Linea]:
    return [
        linea_of(line, f"{ticket.ticket_number}-{line.position}")
        for ticket in sorted(tickets, key=lambda t: t.id)
        for line in ticket.lines
    ]


def totals(tickets: list[Ticket]) -> sri.Totales:
    return sri.totals(lineas_of(tickets))


def lines_total(lines: list[TicketLine]) -> Decimal:
    """What a ticket of `lines` adds up to as an SRI factura (its importe total)."""
    return sri.totals([linea_of(line, str(line.position)) for line in lines]).importe_total


def emisor_of(issuer: Issuer, branch_address: str | None = None) -> sri.Emisor:
    return sri.Emisor(
        ruc=issuer.rfc,
        razon_social=issuer.legal_name,
        nombre_comercial=issuer.trade_name or None,
        direccion_matriz=issuer.head_office_address or "",
        direccion_establecimiento=branch_address or None,
        obligado_contabilidad=bool(issuer.keeps_accounts),
        contribuyente_especial=issuer.special_taxpayer or None,
        rimpe=issuer.rimpe or None,
    )


def emission_date(moment: datetime):
    return moment.astimezone(ECUADOR).date()


def factura_of(invoice: Invoice, ambiente: str) -> sri.Factura:
    """The SRI factura of a reserved invoice (its tickets, its branch's series)."""
    estab, pto_emi = invoice.serie.split("-")
    comprador = sri.Comprador(
        tipo_identificacion=invoice.receptor_id_type or catalogs.CONSUMIDOR_FINAL,
        identificacion=invoice.receptor_rfc,
        razon_social=invoice.receptor_nombre,
        direccion=invoice.receptor_address or None,
        email=invoice.delivery_email or None,
    )
    return sri.Factura(
        emisor=emisor_of(invoice.issuer, invoice.branch.address),
        ambiente=ambiente,
        estab=estab,
        pto_emi=pto_emi,
        secuencial=invoice.folio,
        fecha_emision=emission_date(invoice.fecha),
        comprador=comprador,
        lineas=lineas_of(list(invoice.tickets)),
        pagos=[sri.Pago(forma_pago=invoice.forma_pago, total=invoice.total)],
    )


def signed_xml(invoice: Invoice, key: SigningKey, ambiente: str) -> tuple[bytes, str]:
    """The invoice's factura, signed with the issuer's .p12 and valid against SRI's XSD, and
    its clave de acceso (new: a document refused and made again gets a new one). Raises
    FacturaError, SigningError or InvalidComprobante when it cannot be made."""
    factura = factura_of(invoice, ambiente)
    catalogs.validate_identification(factura.comprador.tipo_identificacion, invoice.receptor_rfc)
    clave = sri.access_key_of(factura)
    xml = sign(sri.build_xml(factura, clave), key)
    validate(xml, signed=True)
    return xml, clave
