"""An SRI factura (codDoc 01) as dataclasses, its totals, and its XML (`build_xml`).

The XML is the factura of schema version 1.1.0 (`<factura id="comprobante" version="1.1.0">`),
validated by `webapp.sri.xsd.validate`. SRI's offline web services accept factura versions
1.0.0, 1.1.0, 2.0.0 and 2.1.0; 1.1.0 is the general one (6 decimals in cantidad and
precioUnitario, the RIMPE legend, pagos), and the 2.x versions only add what a plain
invoice never carries (third parties' items, "rubros de terceros", and the substitute remission
guide). The OCA l10n-ecuador add-ons issue 1.1.0 by default for the same reason.

Money is Decimal. The rounding rules, the only ones here, half up to the cent:

- a line's precioTotalSinImpuesto = round(cantidad × precioUnitario − descuento, 2);
- a line's IVA valor = round(precioTotalSinImpuesto × tarifa / 100, 2);
- totalConImpuestos has one totalImpuesto per codigoPorcentaje: its baseImponible and valor
  are the sums of its lines' (so the invoice's IVA is the sum of its lines' IVA, as a ticket
  adds it up; it is within half a cent per line of baseImponible × tarifa);
- importeTotal = totalSinImpuestos + Σ IVA + propina (0.00).

Free text is cleaned for the XSD: whitespace (newlines included, which the XSD's `[^\\n]*`
refuses) collapsed to single spaces, characters XML cannot carry removed, and cut to the
XSD's maximum length with an ellipsis. lxml escapes &, < and > when it writes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree
from stdnum.ec import ruc as ec_ruc

from webapp.sri import access_key as keys
from webapp.sri import catalogs

VERSION = "1.1.0"
MONEDA = "DOLAR"
CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
ZERO = Decimal("0.00")
MAX_MONEY = Decimal(10) ** 12  # the XSD's totalDigits 14 with 2 decimals
MAX_CAMPOS_ADICIONALES = 15

# Characters XML 1.0 cannot carry (C0 controls other than tab/newline/CR, lone surrogates,
# U+FFFE, U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESTAB = re.compile(r"[0-9]{3}")
_CONTRIBUYENTE_ESPECIAL = re.compile(r"[A-Za-z0-9]{3,13}")
_AGENTE_RETENCION = re.compile(r"[0-9]{1,8}")


class FacturaError(ValueError):
    """The invoice cannot become a valid SRI factura; the message says why (Spanish)."""


@dataclass(frozen=True)
class Emisor:
    ruc: str
    razon_social: str
    direccion_matriz: str
    obligado_contabilidad: bool
    nombre_comercial: str | None = None
    direccion_establecimiento: str | None = None
    contribuyente_especial: str | None = None  # SRI's resolution number
    rimpe: str | None = None  # catalogs.RIMPE_EMPRENDEDOR or RIMPE_NEGOCIO_POPULAR
    agente_retencion: str | None = None  # resolution number (digits)


@dataclass(frozen=True)
class Comprador:
    tipo_identificacion: str  # catalogs.TIPOS_IDENTIFICACION
    identificacion: str
    razon_social: str
    direccion: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Linea:
    codigo_principal: str
    descripcion: str
    cantidad: Decimal  # up to 6 decimals
    precio_unitario: Decimal  # without IVA, up to 6 decimals
    codigo_porcentaje: str = catalogs.IVA_15
    descuento: Decimal = ZERO  # on the line, up to 2 decimals


@dataclass(frozen=True)
class Pago:
    forma_pago: str  # catalogs.FORMAS_PAGO
    total: Decimal
    plazo: Decimal | None = None
    unidad_tiempo: str | None = None  # "dias", "meses"


@dataclass(frozen=True)
class Factura:
    emisor: Emisor
    ambiente: str  # "1" pruebas, "2" producción
    estab: str
    pto_emi: str
    secuencial: int | str
    fecha_emision: date
    comprador: Comprador
    lineas: Sequence[Linea]
    pagos: Sequence[Pago]
    info_adicional: Sequence[tuple[str, str]] = field(default_factory=tuple)

    @property
    def numero(self) -> str:
        """estab-ptoEmi-secuencial, as printed on the RIDE."""
        return f"{self.estab}-{self.pto_emi}-{secuencial_text(self.secuencial)}"


@dataclass(frozen=True)
class LineaTotal:
    linea: Linea
    tarifa: Decimal
    subtotal: Decimal  # precioTotalSinImpuesto, the IVA's base
    iva: Decimal


@dataclass(frozen=True)
class ImpuestoTotal:
    """One totalImpuesto: the lines of one codigoPorcentaje."""

    codigo_porcentaje: str
    tarifa: Decimal
    base_imponible: Decimal
    valor: Decimal


@dataclass(frozen=True)
class Totales:
    lineas: tuple[LineaTotal, ...]
    total_sin_impuestos: Decimal
    total_descuento: Decimal
    impuestos: tuple[ImpuestoTotal, ...]
    iva: Decimal
    propina: Decimal
    importe_total: Decimal

    def subtotal(self, codigo_porcentaje: str) -> Decimal:
        """The base of one codigoPorcentaje (the RIDE's "SUBTOTAL 15 %" …), 0.00 if none."""
        for impuesto in self.impuestos:
            if impuesto.codigo_porcentaje == codigo_porcentaje:
                return impuesto.base_imponible
        return ZERO


def money(value: Decimal) -> Decimal:
    """`value` rounded half up to the cent."""
    return value.quantize(CENT, ROUND_HALF_UP)


def _amount(value: object, name: str, places: Decimal, *, positive: bool = False) -> Decimal:
    """`value` as a Decimal with no more decimals than `places`, ≥ 0 (> 0 if `positive`)."""
    if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
        raise FacturaError(f"{name}: se esperaba un Decimal")
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise FacturaError(f"{name}: no es un número") from None
    if not amount.is_finite():
        raise FacturaError(f"{name}: no es un número")
    if amount >= MAX_MONEY:
        raise FacturaError(f"{name}: es demasiado grande")
    if amount < 0 or (positive and amount == 0):
        raise FacturaError(f"{name}: debe ser {'mayor que' if positive else 'al menos'} cero")
    if amount != amount.quantize(places, ROUND_HALF_UP):
        decimals = -places.as_tuple().exponent
        raise FacturaError(f"{name}: admite a lo sumo {decimals} decimales")
    return amount


def linea_total(linea: Linea) -> LineaTotal:
    """A line's precioTotalSinImpuesto and IVA; FacturaError if a figure breaks the XSD."""
    cantidad = _amount(linea.cantidad, "cantidad", MICRO, positive=True)
    precio = _amount(linea.precio_unitario, "precio unitario", MICRO)
    descuento = _amount(linea.descuento, "descuento", CENT)
    try:
        tarifa = catalogs.tarifa_iva(linea.codigo_porcentaje).tarifa
    except KeyError:
        raise FacturaError(f"código de IVA desconocido: {linea.codigo_porcentaje}") from None
    except ValueError as exc:
        raise FacturaError(str(exc)) from None
    bruto = cantidad * precio
    if descuento > money(bruto):
        raise FacturaError("el descuento de una línea no puede superar su importe")
    subtotal = money(bruto - descuento)
    if subtotal >= MAX_MONEY:
        raise FacturaError("el importe de una línea es demasiado grande")
    return LineaTotal(linea, tarifa, subtotal, money(subtotal * tarifa / 100))


def totals(lineas: Sequence[Linea]) -> Totales:
    """The invoice's figures, from its lines (see the module's rounding rules)."""
    if not lineas:
        raise FacturaError("la factura no tiene líneas")
    computed = tuple(linea_total(linea) for linea in lineas)
    groups: dict[str, list[LineaTotal]] = {}
    for line in computed:
        groups.setdefault(line.linea.codigo_porcentaje, []).append(line)
    impuestos = tuple(
        ImpuestoTotal(
            codigo_porcentaje=codigo,
            tarifa=group[0].tarifa,
            base_imponible=sum((line.subtotal for line in group), ZERO),
            valor=sum((line.iva for line in group), ZERO),
        )
        for codigo, group in sorted(groups.items(), key=lambda item: int(item[0]))
    )
    total_sin_impuestos = sum((line.subtotal for line in computed), ZERO)
    iva = sum((impuesto.valor for impuesto in impuestos), ZERO)
    importe_total = total_sin_impuestos + iva
    if importe_total >= MAX_MONEY:
        raise FacturaError("el total de la factura es demasiado grande")
    return Totales(
        lineas=computed,
        total_sin_impuestos=total_sin_impuestos,
        total_descuento=sum((money(Decimal(line.linea.descuento)) for line in computed), ZERO),
        impuestos=impuestos,
        iva=iva,
        propina=ZERO,
        importe_total=importe_total,
    )


def clean_text(value: str | None, limit: int) -> str:
    """`value` fit for the XSD's free-text types: one line, XML characters only, at most
    `limit` characters (cut with an ellipsis). Empty when nothing is left."""
    text = " ".join(_NOT_XML.sub("", value or "").split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _required(value: str | None, limit: int, name: str) -> str:
    text = clean_text(value, limit)
    if not text:
        raise FacturaError(f"falta {name}")
    return text


def secuencial_text(value: int | str) -> str:
    try:
        return keys.digits(value, 9, "secuencial")
    except keys.InvalidAccessKey as exc:
        raise FacturaError(str(exc)) from None


def _code(value: str | int, name: str) -> str:
    text = f"{value:03d}" if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _ESTAB.fullmatch(text):
        raise FacturaError(f"{name}: debe tener 3 dígitos")
    return text


def _decimal_text(value: Decimal, places: Decimal) -> str:
    return str(value.quantize(places, ROUND_HALF_UP))


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _check_emisor(emisor: Emisor) -> None:
    if not ec_ruc.is_valid(emisor.ruc) or not emisor.ruc.endswith("001"):
        raise FacturaError("el RUC del emisor no es válido")
    if emisor.contribuyente_especial is not None and not _CONTRIBUYENTE_ESPECIAL.fullmatch(
        emisor.contribuyente_especial
    ):
        raise FacturaError("contribuyente especial: de 3 a 13 letras o dígitos")
    if emisor.rimpe is not None and emisor.rimpe not in catalogs.RIMPE:
        raise FacturaError("leyenda RIMPE desconocida")
    if emisor.agente_retencion is not None and not _AGENTE_RETENCION.fullmatch(
        emisor.agente_retencion
    ):
        raise FacturaError("agente de retención: el número de resolución tiene hasta 8 dígitos")


def access_key_of(factura: Factura, codigo_numerico: str | None = None) -> str:
    """The factura's clave de acceso (codDoc 01, tipo de emisión normal), with `codigo_numerico`
    or a new random one: store the key when first built, it cannot be rebuilt."""
    return keys.build(
        fecha=factura.fecha_emision,
        ruc=factura.emisor.ruc,
        ambiente=factura.ambiente,
        estab=factura.estab,
        pto_emi=factura.pto_emi,
        secuencial=factura.secuencial,
        codigo_numerico=codigo_numerico or keys.new_codigo_numerico(),
    )


def check_key(factura: Factura, clave: str, estab: str, pto_emi: str, secuencial: str) -> None:
    try:
        parts = keys.parse(clave)
    except keys.InvalidAccessKey as exc:
        raise FacturaError(str(exc)) from None
    expected = {
        "fecha": factura.fecha_emision,
        "cod_doc": keys.FACTURA,
        "ruc": factura.emisor.ruc,
        "ambiente": factura.ambiente,
        "estab": estab,
        "pto_emi": pto_emi,
        "secuencial": secuencial,
    }
    wrong = [name for name, value in expected.items() if getattr(parts, name) != value]
    if wrong:
        raise FacturaError(f"la clave de acceso no corresponde a la factura: {', '.join(wrong)}")


def campos_adicionales(factura: Factura) -> list[tuple[str, str]]:
    campos = [
        (clean_text(nombre, 300), clean_text(valor, 300))
        for nombre, valor in factura.info_adicional
    ]
    email = clean_text(factura.comprador.email, 300)
    if email and not any(nombre.lower() in ("email", "correo", "e-mail") for nombre, _ in campos):
        campos.insert(0, ("Email", email))
    campos = [(nombre, valor) for nombre, valor in campos if nombre and valor]
    if len(campos) > MAX_CAMPOS_ADICIONALES:
        raise FacturaError(f"a lo sumo {MAX_CAMPOS_ADICIONALES} campos de información adicional")
    return campos


def build_xml(factura: Factura, clave_acceso: str) -> bytes:
    """The unsigned SRI factura 1.1.0 of `factura` under `clave_acceso`, UTF-8 bytes.

    FacturaError when the invoice cannot be valid: a figure or code the XSD or SRI's tables
    refuse, a buyer identification SRI would refuse, "consumidor final" above SRI's limit,
    pagos that do not add up to the total, a clave de acceso of another comprobante.
    """
    emisor, comprador = factura.emisor, factura.comprador
    _check_emisor(emisor)
    if factura.ambiente not in catalogs.AMBIENTES:
        raise FacturaError(f"ambiente desconocido: {factura.ambiente}")
    estab = _code(factura.estab, "establecimiento")
    pto_emi = _code(factura.pto_emi, "punto de emisión")
    secuencial = secuencial_text(factura.secuencial)
    check_key(factura, clave_acceso, estab, pto_emi, secuencial)
    figures = totals(factura.lineas)
    try:
        identificacion = catalogs.validate_identification(
            comprador.tipo_identificacion, comprador.identificacion
        )
        catalogs.check_consumidor_final(comprador.tipo_identificacion, figures.importe_total)
    except catalogs.InvalidIdentification as exc:
        raise FacturaError(str(exc)) from None
    if comprador.tipo_identificacion == catalogs.CONSUMIDOR_FINAL:
        razon_social_comprador = catalogs.CONSUMIDOR_FINAL_NOMBRE
    else:
        razon_social_comprador = _required(comprador.razon_social, 300, "la razón social")
    if not factura.pagos:
        raise FacturaError("la factura debe indicar su forma de pago")
    pagos = []
    for pago in factura.pagos:
        if pago.forma_pago not in catalogs.FORMAS_PAGO:
            raise FacturaError(f"forma de pago desconocida: {pago.forma_pago}")
        pagos.append(
            (
                pago,
                _amount(pago.total, "total del pago", CENT),
                None if pago.plazo is None else _amount(pago.plazo, "plazo", CENT),
            )
        )
    if sum((total for _, total, _ in pagos), ZERO) != figures.importe_total:
        raise FacturaError("los pagos no suman el total de la factura")

    root = etree.Element("factura", id="comprobante", version=VERSION)
    info = _sub(root, "infoTributaria")
    _sub(info, "ambiente", factura.ambiente)
    _sub(info, "tipoEmision", keys.EMISION_NORMAL)
    _sub(info, "razonSocial", _required(emisor.razon_social, 300, "la razón social del emisor"))
    if nombre_comercial := clean_text(emisor.nombre_comercial, 300):
        _sub(info, "nombreComercial", nombre_comercial)
    _sub(info, "ruc", emisor.ruc)
    _sub(info, "claveAcceso", clave_acceso.strip())
    _sub(info, "codDoc", keys.FACTURA)
    _sub(info, "estab", estab)
    _sub(info, "ptoEmi", pto_emi)
    _sub(info, "secuencial", secuencial)
    _sub(info, "dirMatriz", _required(emisor.direccion_matriz, 300, "la dirección matriz"))
    if emisor.agente_retencion is not None:
        _sub(info, "agenteRetencion", emisor.agente_retencion)
    if emisor.rimpe is not None:
        _sub(info, "contribuyenteRimpe", emisor.rimpe)

    info = _sub(root, "infoFactura")
    _sub(info, "fechaEmision", f"{factura.fecha_emision:%d/%m/%Y}")
    if direccion := clean_text(emisor.direccion_establecimiento, 300):
        _sub(info, "dirEstablecimiento", direccion)
    if emisor.contribuyente_especial is not None:
        _sub(info, "contribuyenteEspecial", emisor.contribuyente_especial)
    _sub(info, "obligadoContabilidad", catalogs.SI if emisor.obligado_contabilidad else catalogs.NO)
    _sub(info, "tipoIdentificacionComprador", comprador.tipo_identificacion)
    _sub(info, "razonSocialComprador", razon_social_comprador)
    _sub(info, "identificacionComprador", identificacion)
    if direccion := clean_text(comprador.direccion, 300):
        _sub(info, "direccionComprador", direccion)
    _sub(info, "totalSinImpuestos", str(figures.total_sin_impuestos))
    _sub(info, "totalDescuento", str(figures.total_descuento))
    con_impuestos = _sub(info, "totalConImpuestos")
    for impuesto in figures.impuestos:
        total = _sub(con_impuestos, "totalImpuesto")
        _sub(total, "codigo", catalogs.IVA)
        _sub(total, "codigoPorcentaje", impuesto.codigo_porcentaje)
        _sub(total, "baseImponible", str(impuesto.base_imponible))
        _sub(total, "tarifa", _decimal_text(impuesto.tarifa, CENT))
        _sub(total, "valor", str(impuesto.valor))
    _sub(info, "propina", str(figures.propina))
    _sub(info, "importeTotal", str(figures.importe_total))
    _sub(info, "moneda", MONEDA)
    pagos_element = _sub(info, "pagos")
    for pago, total_pago, plazo in pagos:
        element = _sub(pagos_element, "pago")
        _sub(element, "formaPago", pago.forma_pago)
        _sub(element, "total", str(total_pago))
        if plazo is not None:
            _sub(element, "plazo", str(plazo))
        if unidad := clean_text(pago.unidad_tiempo, 10):
            _sub(element, "unidadTiempo", unidad)

    detalles = _sub(root, "detalles")
    for line in figures.lineas:
        linea = line.linea
        detalle = _sub(detalles, "detalle")
        if codigo := clean_text(linea.codigo_principal, 25):
            _sub(detalle, "codigoPrincipal", codigo)
        _sub(detalle, "descripcion", _required(linea.descripcion, 300, "la descripción"))
        _sub(detalle, "cantidad", _decimal_text(Decimal(linea.cantidad), MICRO))
        _sub(detalle, "precioUnitario", _decimal_text(Decimal(linea.precio_unitario), MICRO))
        _sub(detalle, "descuento", _decimal_text(Decimal(linea.descuento), CENT))
        _sub(detalle, "precioTotalSinImpuesto", str(line.subtotal))
        impuesto = _sub(_sub(detalle, "impuestos"), "impuesto")
        _sub(impuesto, "codigo", catalogs.IVA)
        _sub(impuesto, "codigoPorcentaje", linea.codigo_porcentaje)
        _sub(impuesto, "tarifa", _decimal_text(line.tarifa, CENT))
        _sub(impuesto, "baseImponible", str(line.subtotal))
        _sub(impuesto, "valor", str(line.iva))

    campos = campos_adicionales(factura)
    if campos:
        adicional = _sub(root, "infoAdicional")
        for nombre, valor in campos:
            _sub(adicional, "campoAdicional", valor).set("nombre", nombre)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
