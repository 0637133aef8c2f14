"""SRI's tables for electronic comprobantes, with their Spanish names, and the buyer checks.

Sources: SRI's "Ficha técnica de comprobantes electrónicos — esquema offline" (tables of
tipos de comprobante, ambientes, tipos de emisión, tipos de identificación, impuestos,
tarifas del IVA and formas de pago), as reproduced by the OCA l10n-ecuador add-ons and other
public implementations; the factura XSD (xsd/factura_V1.1.0.xsd) fixes the formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from stdnum.ec import ci, ruc
from stdnum.exceptions import ValidationError

# Tipo de comprobante (codDoc).
TIPOS_COMPROBANTE = {
    "01": "Factura",
    "03": "Liquidación de compra de bienes y prestación de servicios",
    "04": "Nota de crédito",
    "05": "Nota de débito",
    "06": "Guía de remisión",
    "07": "Comprobante de retención",
}

AMBIENTES = {"1": "Pruebas", "2": "Producción"}

# Tipo de emisión: SRI's offline scheme has only the normal one ("2", contingencia, belonged
# to the withdrawn online scheme).
TIPOS_EMISION = {"1": "Emisión normal"}

# Impuesto (codigo of impuesto / totalImpuesto).
IVA = "2"
IMPUESTOS = {"2": "IVA", "3": "ICE", "5": "IRBPNR"}


@dataclass(frozen=True)
class TarifaIva:
    """One row of SRI's table of IVA rates: codigoPorcentaje, name, rate in percent."""

    codigo: str
    nombre: str
    tarifa: Decimal  # percent: 15 means 15 %
    vigente: bool  # may be put on a new invoice today


# IVA codigoPorcentaje. 12 % was the general rate until 31 March 2024 and 14 % applied from
# June 2016 to May 2017: kept to read old documents, refused on new ones. 15 % is the
# general rate since 1 April 2024; 5 % applies to construction materials (and a few more).
# Code 8 (IVA diferenciado, a rate fixed decree by decree for holidays) is left out: this
# product does not bill it. Code 10 (13 %) appears in recent third-party copies of the table
# (a reduced rate); not checked against SRI's own document, so not offered on new invoices.
TARIFAS_IVA = {
    t.codigo: t
    for t in (
        TarifaIva("0", "IVA 0 %", Decimal("0"), True),
        TarifaIva("2", "IVA 12 %", Decimal("12"), False),
        TarifaIva("3", "IVA 14 %", Decimal("14"), False),
        TarifaIva("4", "IVA 15 %", Decimal("15"), True),
        TarifaIva("5", "IVA 5 %", Decimal("5"), True),
        TarifaIva("6", "No objeto de impuesto", Decimal("0"), True),
        TarifaIva("7", "Exento de IVA", Decimal("0"), True),
        TarifaIva("10", "IVA 13 %", Decimal("13"), False),
    )
}
IVA_15 = "4"
IVA_0 = "0"
IVA_5 = "5"
NO_OBJETO_IVA = "6"
EXENTO_IVA = "7"

# Formas de pago (pagos/pago/formaPago). An invoice must list how it is paid.
FORMAS_PAGO = {
    "01": "Sin utilización del sistema financiero",
    "15": "Compensación de deudas",
    "16": "Tarjeta de débito",
    "17": "Dinero electrónico",
    "18": "Tarjeta prepago",
    "19": "Tarjeta de crédito",
    "20": "Otros con utilización del sistema financiero",
    "21": "Endoso de títulos",
}

# Tipo de identificación del comprador (tipoIdentificacionComprador).
RUC = "04"
CEDULA = "05"
PASAPORTE = "06"
CONSUMIDOR_FINAL = "07"
EXTERIOR = "08"
TIPOS_IDENTIFICACION = {
    RUC: "RUC",
    CEDULA: "Cédula",
    PASAPORTE: "Pasaporte",
    CONSUMIDOR_FINAL: "Venta a consumidor final",
    EXTERIOR: "Identificación del exterior",
}
CONSUMIDOR_FINAL_ID = "9999999999999"
CONSUMIDOR_FINAL_NOMBRE = "CONSUMIDOR FINAL"

# An invoice may name its buyer "CONSUMIDOR FINAL" only when its total does not exceed
# USD 50.00: Reglamento de Comprobantes de Venta, Retención y Documentos Complementarios,
# art. 19 num. 1, as amended by Decreto Ejecutivo 586 of 31 October 2022 (from US$200 to
# US$50); reported e.g. by Vistazo, "Compras superiores a $50 ya no podrán emitirse a nombre
# de consumidor final".
CONSUMIDOR_FINAL_LIMITE = Decimal("50.00")

# obligado a llevar contabilidad; régimen RIMPE legends (the XSD's contribuyenteRimpe pattern).
SI = "SI"
NO = "NO"
RIMPE_EMPRENDEDOR = "CONTRIBUYENTE RÉGIMEN RIMPE"
RIMPE_NEGOCIO_POPULAR = "CONTRIBUYENTE NEGOCIO POPULAR - RÉGIMEN RIMPE"
RIMPE = {RIMPE_EMPRENDEDOR: "RIMPE emprendedor", RIMPE_NEGOCIO_POPULAR: "RIMPE negocio popular"}

_FOREIGN_ID = re.compile(r"[0-9A-Za-z]{1,20}")
_PASSPORT = re.compile(r"[0-9A-Za-z]{3,20}")


class InvalidIdentification(ValueError):
    """A buyer identification that SRI would refuse. `code` names the problem for the UI;
    the message is Spanish, for the person who typed it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def tarifa_iva(codigo: str, *, nueva: bool = True) -> TarifaIva:
    """The IVA rate of `codigo`; KeyError if unknown, ValueError when `nueva` and no longer in
    force (a new invoice cannot carry it)."""
    tarifa = TARIFAS_IVA[codigo]
    if nueva and not tarifa.vigente:
        raise ValueError(f"la tarifa de IVA {tarifa.nombre} no está vigente")
    return tarifa


def validate_identification(tipo: str, numero: str) -> str:
    """The buyer's identification, normalized (no spaces or dashes in a RUC or cédula,
    upper case otherwise); InvalidIdentification when SRI would refuse it."""
    numero = (numero or "").strip()
    if tipo not in TIPOS_IDENTIFICACION:
        raise InvalidIdentification("tipo", "Elija un tipo de identificación válido.")
    if tipo == RUC:
        try:
            numero = ruc.validate(numero)
            if not numero.endswith("001"):  # SRI's RUCs end in 001 (the XSD's numeroRuc)
                raise ValidationError()
            return numero
        except ValidationError:
            raise InvalidIdentification(
                "ruc", "El RUC no es válido: revise sus 13 dígitos."
            ) from None
    if tipo == CEDULA:
        try:
            return ci.validate(numero)
        except ValidationError:
            raise InvalidIdentification(
                "cedula", "La cédula no es válida: revise sus 10 dígitos."
            ) from None
    if tipo == CONSUMIDOR_FINAL:
        if numero != CONSUMIDOR_FINAL_ID:
            raise InvalidIdentification(
                "consumidor_final",
                f"La identificación de consumidor final es {CONSUMIDOR_FINAL_ID}.",
            )
        return numero
    compact = re.sub(r"[\s-]", "", numero).upper()
    pattern = _PASSPORT if tipo == PASAPORTE else _FOREIGN_ID
    if not pattern.fullmatch(compact):
        raise InvalidIdentification(
            "pasaporte" if tipo == PASAPORTE else "exterior",
            "Escriba la identificación con letras y números, hasta 20 caracteres.",
        )
    return compact


def check_consumidor_final(tipo: str, importe_total: Decimal) -> None:
    """Refuse an invoice to "CONSUMIDOR FINAL" above SRI's limit (CONSUMIDOR_FINAL_LIMITE)."""
    if tipo == CONSUMIDOR_FINAL and importe_total > CONSUMIDOR_FINAL_LIMITE:
        raise InvalidIdentification(
            "consumidor_final_limite",
            f"Una factura de más de USD {CONSUMIDOR_FINAL_LIMITE} no puede emitirse a "
            "consumidor final: escriba la identificación del comprador.",
        )
