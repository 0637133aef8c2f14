"""A stored SRI factura read back into `webapp.sri.factura`'s dataclasses.

    factura, clave = factura_from_xml(signed_or_authorised_xml)
    pdf = webapp.sri.ride.render_ride(factura, clave, numero, fecha, factura.ambiente)

So the RIDE (and anything else) is made from the XML that was signed and authorised, not from
database rows that could have drifted. `factura_from_xml(build_xml(f, clave))` gives back `f`
(signed or not: the ds:Signature is ignored), with these normalisations, as `build_xml` writes:

- free text as `factura.clean_text` leaves it (one line, cut to the XSD's length);
- sequences (lineas, pagos, info_adicional) as tuples; `secuencial` as an int;
- cantidad and precio_unitario without trailing zeros (the XML's 3.000000 reads 3), descuento,
  totals and plazo with their two decimals;
- the buyer's email is the campo adicional "Email" that `build_xml` puts first when the
  comprador has one (it is taken out of info_adicional); the razón social of a "consumidor
  final" buyer is "CONSUMIDOR FINAL";
- an absent codigoPrincipal reads "".

ReadingError (a ValueError) when the XML is not a factura this module can read.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from lxml import etree

from webapp.sri import catalogs
from webapp.sri.factura import Comprador, Emisor, Factura, Linea, Pago
from webapp.sri.xsd import InvalidComprobante, parse

EMAIL_FIELD = "Email"


class ReadingError(ValueError):
    """The XML is not an SRI factura that can be read back; the message says what is missing."""


def _text(parent: etree._Element, path: str, *, required: bool = True) -> str | None:
    element = parent.find(path)
    if element is None or element.text is None:
        if required:
            raise ReadingError(f"falta {path}")
        return None
    return element.text


def _decimal(parent: etree._Element, path: str, *, required: bool = True) -> Decimal | None:
    text = _text(parent, path, required=required)
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ReadingError(f"{path} no es un número: {text!r}") from None
    if not value.is_finite():
        raise ReadingError(f"{path} no es un número: {text!r}")
    return value


def _plain(value: Decimal) -> Decimal:
    """`value` without trailing zeros after the point (3.000000 → 3, 10.500000 → 10.5)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def factura_from_xml(xml: bytes) -> tuple[Factura, str]:
    """The Factura in `xml` (an SRI factura as `build_xml` writes it, signed or not) and its
    clave de acceso."""
    try:
        root = parse(xml)
    except InvalidComprobante as exc:
        raise ReadingError(str(exc)) from None
    if root.tag != "factura":
        raise ReadingError(f"el elemento raíz es {root.tag}, no una factura")
    tributaria = root.find("infoTributaria")
    info = root.find("infoFactura")
    if tributaria is None or info is None:
        raise ReadingError("falta infoTributaria o infoFactura")

    emisor = Emisor(
        ruc=_text(tributaria, "ruc"),
        razon_social=_text(tributaria, "razonSocial"),
        direccion_matriz=_text(tributaria, "dirMatriz"),
        obligado_contabilidad=_text(info, "obligadoContabilidad", required=False) == catalogs.SI,
        nombre_comercial=_text(tributaria, "nombreComercial", required=False),
        direccion_establecimiento=_text(info, "dirEstablecimiento", required=False),
        contribuyente_especial=_text(info, "contribuyenteEspecial", required=False),
        rimpe=_text(tributaria, "contribuyenteRimpe", required=False),
        agente_retencion=_text(tributaria, "agenteRetencion", required=False),
    )

    campos = [
        (campo.get("nombre") or "", campo.text or "")
        for campo in root.iterfind("infoAdicional/campoAdicional")
    ]
    email = None
    if campos and campos[0][0] == EMAIL_FIELD:
        email = campos.pop(0)[1]
    comprador = Comprador(
        tipo_identificacion=_text(info, "tipoIdentificacionComprador"),
        identificacion=_text(info, "identificacionComprador"),
        razon_social=_text(info, "razonSocialComprador"),
        direccion=_text(info, "direccionComprador", required=False),
        email=email,
    )

    lineas = []
    for detalle in root.iterfind("detalles/detalle"):
        impuesto = detalle.find("impuestos/impuesto")
        if impuesto is None:
            raise ReadingError("una línea no tiene impuestos/impuesto")
        lineas.append(
            Linea(
                codigo_principal=_text(detalle, "codigoPrincipal", required=False) or "",
                descripcion=_text(detalle, "descripcion"),
                cantidad=_plain(_decimal(detalle, "cantidad")),
                precio_unitario=_plain(_decimal(detalle, "precioUnitario")),
                codigo_porcentaje=_text(impuesto, "codigoPorcentaje"),
                descuento=_decimal(detalle, "descuento", required=False) or Decimal("0.00"),
            )
        )
    if not lineas:
        raise ReadingError("la factura no tiene líneas")

    pagos = tuple(
        Pago(
            forma_pago=_text(pago, "formaPago"),
            total=_decimal(pago, "total"),
            plazo=_decimal(pago, "plazo", required=False),
            unidad_tiempo=_text(pago, "unidadTiempo", required=False),
        )
        for pago in root.iterfind("infoFactura/pagos/pago")
    )

    fecha_text = _text(info, "fechaEmision")
    try:
        fecha = datetime.strptime(fecha_text.strip(), "%d/%m/%Y").date()
    except ValueError:
        raise ReadingError(f"fechaEmision no es una fecha dd/mm/aaaa: {fecha_text!r}") from None
    secuencial = _text(tributaria, "secuencial").strip()
    if not secuencial.isdigit():
        raise ReadingError(f"secuencial no es un número: {secuencial!r}")

    factura = Factura(
        emisor=emisor,
        ambiente=_text(tributaria, "ambiente").strip(),
        estab=_text(tributaria, "estab").strip(),
        pto_emi=_text(tributaria, "ptoEmi").strip(),
        secuencial=int(secuencial),
        fecha_emision=fecha,
        comprador=comprador,
        lineas=tuple(lineas),
        pagos=pagos,
        info_adicional=tuple(campos),
    )
    return factura, _text(tributaria, "claveAcceso").strip()


__all__ = ["ReadingError", "factura_from_xml"]
