"""A Draft becomes a satcfdi CFDI 4.0 Comprobante (`build`), signed with a CSD (`sign`).

satcfdi computes Importe, SubTotal, Traslados and Total itself; `build` passes every tax Base
and Importe from `webapp.cfdi.amounts`, lets satcfdi round the Importes half up (its default
is half even), and checks that the figures it wrote are exactly `amounts.totals`: the Total of
the CFDI is the total printed on the ticket, to the cent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

from satcfdi.create.cfd import cfdi40
from satcfdi.models import Signer

from webapp.cfdi import amounts
from webapp.cfdi.catalogs import local_zone
from webapp.cfdi.draft import SUSTITUCION, Draft, Line

IVA = "002"
RATE_QUANTUM = Decimal("0.000001")


class BuildError(ValueError):
    """The draft cannot become a valid CFDI (e.g. a line subject to tax with no amount)."""


def plain(value: Decimal, min_decimals: int = 0) -> Decimal:
    """`value` without trailing zeros, keeping at least `min_decimals` (1.500000 → 1.5)."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)  # finite Decimals only
    if -exponent < min_decimals:
        return value.quantize(Decimal(1).scaleb(-min_decimals))
    if exponent > 0:  # 1E+2 → 100
        return normalized.quantize(Decimal(1))
    return normalized


def cfdi_fecha(moment: datetime, lugar_expedicion: str) -> datetime:
    """The CFDI's Fecha: local time at the LugarExpedicion, naive, to the second."""
    return moment.astimezone(local_zone(lugar_expedicion)).replace(tzinfo=None, microsecond=0)


def _concepto(line: Line) -> cfdi40.Concepto:
    importe = amounts.line_importe(line)
    impuestos = None
    if line.taxed:
        if importe <= 0:
            raise BuildError(f"line {line.description!r} is subject to tax but has no amount")
        rate = None if line.tax_rate is None else line.tax_rate.quantize(RATE_QUANTUM)
        impuestos = cfdi40.Impuestos(
            traslados=cfdi40.Traslado(
                impuesto=IVA,
                tipo_factor=str(line.tax_factor),
                tasa_o_cuota=rate,
                importe=amounts.line_tax(line),
                base=importe,
            )
        )
    return cfdi40.Concepto(
        clave_prod_serv=line.clave_prod_serv,
        cantidad=plain(line.quantity),
        clave_unidad=line.clave_unidad,
        descripcion=line.description,
        valor_unitario=plain(line.unit_price, 2),
        objeto_imp=line.objeto_imp,
        no_identificacion=line.no_identificacion,
        impuestos=impuestos,
    )


def _informacion_global(draft: Draft) -> cfdi40.InformacionGlobal | None:
    info = draft.informacion_global
    if info is None:
        return None
    return cfdi40.InformacionGlobal(periodicidad=info.periodicidad, meses=info.meses, ano=info.año)


def _relacionados(draft: Draft) -> cfdi40.CfdiRelacionados | None:
    if not draft.sustituye:
        return None
    return cfdi40.CfdiRelacionados(
        tipo_relacion=SUSTITUCION, cfdi_relacionado=list(draft.sustituye)
    )


def build(draft: Draft) -> cfdi40.Comprobante:
    """The unsigned Comprobante (Ingreso, Exportacion 01) for `draft`.

    Raises BuildError when satcfdi's figures would differ from `amounts.totals(draft.lines)`.
    """
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_UP  # satcfdi rounds Importe with round(): make it half up
        comprobante = cfdi40.Comprobante(
            emisor=cfdi40.Emisor(
                rfc=draft.emisor_rfc,
                nombre=draft.emisor_nombre,
                regimen_fiscal=draft.emisor_regimen,
            ),
            lugar_expedicion=draft.lugar_expedicion,
            receptor=cfdi40.Receptor(
                rfc=draft.receptor_rfc,
                nombre=draft.receptor_nombre,
                domicilio_fiscal_receptor=draft.receptor_cp,
                regimen_fiscal_receptor=draft.receptor_regimen,
                uso_cfdi=draft.uso_cfdi,
            ),
            conceptos=[_concepto(line) for line in draft.lines],
            moneda=draft.moneda,
            tipo_de_comprobante="I",
            exportacion="01",
            serie=draft.serie,
            folio=str(draft.folio),
            forma_pago=draft.forma_pago,
            metodo_pago=draft.metodo_pago,
            fecha=cfdi_fecha(draft.fecha, draft.lugar_expedicion),
            informacion_global=_informacion_global(draft),
            cfdi_relacionados=_relacionados(draft),
        )
    _check(comprobante, amounts.totals(draft.lines))
    return comprobante


def _check(comprobante: cfdi40.Comprobante, expected: amounts.Totals) -> None:
    """satcfdi's SubTotal, Traslados and Total must be ours, or the invoice is not the ticket."""
    impuestos = comprobante.get("Impuestos") or {}
    traslados = [
        (
            str(t["TipoFactor"]),
            None if t.get("TasaOCuota") is None else Decimal(t["TasaOCuota"]),
            Decimal(t["Base"]),
            None if t.get("Importe") is None else Decimal(t["Importe"]),
        )
        for t in impuestos.get("Traslados") or []
    ]
    wanted = [(g.factor, g.rate, g.base, g.amount) for g in expected.taxes]
    found = {
        "SubTotal": comprobante["SubTotal"],
        "TotalImpuestosTrasladados": impuestos.get("TotalImpuestosTrasladados"),
        "Total": comprobante["Total"],
        "Traslados": traslados,
    }
    if found != {
        "SubTotal": expected.subtotal,
        "TotalImpuestosTrasladados": expected.tax_total,
        "Total": expected.total,
        "Traslados": wanted,
    }:
        raise BuildError(f"CFDI figures {found} differ from the ticket's {expected}")


def sign(comprobante: cfdi40.Comprobante, signer: Signer) -> bytes:
    """Seal `comprobante` with the issuer's CSD; the signed XML as UTF-8 bytes.

    Raises BuildError when the CSD belongs to another RFC than the Emisor (a PAC refuses it).
    """
    if str(signer.rfc) != comprobante["Emisor"]["Rfc"]:
        raise BuildError(
            f"the CSD belongs to {signer.rfc}, not to the emisor {comprobante['Emisor']['Rfc']}"
        )
    comprobante.sign(signer)
    return comprobante.xml_bytes()
