"""The RIDE (Representación Impresa del Documento Electrónico) of an authorised SRI factura,
as a PDF (xhtml2pdf), in Spanish, black and white.

    pdf = render_ride(factura, clave, numero_autorizacion, fecha_autorizacion, "2", paper="A4")

What it prints follows SRI's ficha técnica (section "RIDE") and the layout every Ecuadorian
issuer uses: the issuer's block (razón social, nombre comercial, dirección matriz and
establecimiento, contribuyente especial, obligado a llevar contabilidad, RIMPE legend,
agente de retención), the comprobante's block (RUC, FACTURA No. estab-ptoEmi-secuencial,
número and fecha y hora de autorización, ambiente, emisión, and the clave de acceso as a
Code 128 barcode with its 49 digits under it), the buyer, the detail, the subtotals by IVA
rate, the formas de pago and the información adicional. Every figure comes from
`factura.totals`, so the RIDE and the XML agree to the cent. In the test environment
(ambiente "1") it says "SIN VALIDEZ TRIBUTARIA — AMBIENTE DE PRUEBAS" at the top and in the
footer of every page.

The barcode is a PNG drawn here from reportlab's Code 128 encoding (reportlab comes with
xhtml2pdf; its renderPM backend does not, hence Pillow): one module is `BARCODE_MODULE_PX`
pixels, with the standard quiet zone of 10 modules on each side; a 49-digit key is 341
modules, printed 8.4 cm wide (0.25 mm a module) and 1.1 cm high. The PDF shows the image
without interpolation, so it prints crisp.
"""

from __future__ import annotations

import base64
import functools
import io
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import jinja2
from PIL import Image, ImageDraw
from reportlab.graphics.barcode.code128 import Code128
from xhtml2pdf import pisa

from webapp.sri import access_key as keys
from webapp.sri import catalogs
from webapp.sri.factura import (
    CENT,
    Factura,
    FacturaError,
    campos_adicionales,
    check_key,
    secuencial_text,
    totals,
)

PAPERS = {"A4": "a4", "letter": "letter"}
ECUADOR = timezone(timedelta(hours=-5), "ECT")  # Ecuador (mainland) has no daylight saving
BARCODE_MODULE_PX = 2
BARCODE_HEIGHT_PX = 70
BARCODE_QUIET_MODULES = 10
SANDBOX_MARK = "SIN VALIDEZ TRIBUTARIA — AMBIENTE DE PRUEBAS"


class RideError(RuntimeError):
    """xhtml2pdf could not lay the RIDE out."""


def code128_modules(value: str) -> list[tuple[bool, int]]:
    """The Code 128 symbol of `value` (reportlab's encoding: start code, set C for pairs of
    digits, check symbol, stop) as (is_bar, width in modules) runs, quiet zones excluded."""
    symbol = Code128(value)
    symbol.validate()
    symbol.encode()
    symbol.decompose()
    # Upper-case letters are bars, lower-case spaces; the letter is the width (a=1, b=2 …).
    return [(c.isupper(), ord(c.lower()) - ord("a") + 1) for c in symbol.decomposed]


@functools.lru_cache(maxsize=64)
def barcode_png(value: str) -> bytes:
    """`value` as a black-on-white Code 128 barcode, a 1-bit PNG."""
    runs = code128_modules(value)
    quiet = BARCODE_QUIET_MODULES * BARCODE_MODULE_PX
    width = sum(w for _, w in runs) * BARCODE_MODULE_PX + 2 * quiet
    image = Image.new("1", (width, BARCODE_HEIGHT_PX), 1)
    draw = ImageDraw.Draw(image)
    x = quiet
    for is_bar, modules in runs:
        size = modules * BARCODE_MODULE_PX
        if is_bar:
            draw.rectangle((x, 0, x + size - 1, BARCODE_HEIGHT_PX - 1), fill=0)
        x += size
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _barcode(value: str) -> dict:
    return {"src": "data:image/png;base64," + base64.b64encode(barcode_png(value)).decode()}


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT, ROUND_HALF_UP))


def _decimal(value: Decimal) -> str:
    """A quantity or unit price: its decimals (up to the XML's 6), at least 2."""
    value = Decimal(value)
    if value == value.quantize(CENT):
        return str(value.quantize(CENT))
    return f"{value.normalize():f}"


def _percent(tarifa: Decimal) -> str:
    return f"{Decimal(tarifa).normalize():f} %"


def _authorised_at(moment: datetime) -> str:
    """dd/mm/aaaa hh:mm:ss in Ecuador's time (a naive datetime is taken as Ecuador's)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(ECUADOR)
    return f"{moment:%d/%m/%Y %H:%M:%S}"


def _identificacion(factura: Factura) -> tuple[str, str]:
    """The buyer's name and identification as the XML carries them."""
    comprador = factura.comprador
    try:
        numero = catalogs.validate_identification(
            comprador.tipo_identificacion, comprador.identificacion
        )
    except catalogs.InvalidIdentification:
        numero = (comprador.identificacion or "").strip()
    if comprador.tipo_identificacion == catalogs.CONSUMIDOR_FINAL:
        return catalogs.CONSUMIDOR_FINAL_NOMBRE, numero
    return comprador.razon_social, numero


def _totals_rows(figures) -> list[tuple[str, str, bool]]:
    """(label, amount, emphasised) rows of the totals box: SUBTOTAL by rate, then the IVA."""
    rates = {i.codigo_porcentaje: i for i in figures.impuestos if i.tarifa > 0}
    taxed = [catalogs.IVA_15] + sorted((c for c in rates if c != catalogs.IVA_15), key=int)
    tarifa = {c: catalogs.TARIFAS_IVA[c].tarifa for c in taxed}
    rows = [(f"SUBTOTAL {_percent(tarifa[c])}", _money(figures.subtotal(c)), False) for c in taxed]
    rows += [
        ("SUBTOTAL 0 %", _money(figures.subtotal(catalogs.IVA_0)), False),
        ("SUBTOTAL NO OBJETO DE IVA", _money(figures.subtotal(catalogs.NO_OBJETO_IVA)), False),
        ("SUBTOTAL EXENTO DE IVA", _money(figures.subtotal(catalogs.EXENTO_IVA)), False),
        ("SUBTOTAL SIN IMPUESTOS", _money(figures.total_sin_impuestos), False),
        ("DESCUENTO", _money(figures.total_descuento), False),
    ]
    rows += [
        (f"IVA {_percent(tarifa[c])}", _money(rates[c].valor if c in rates else 0), False)
        for c in taxed
    ]
    rows += [
        ("PROPINA", _money(figures.propina), False),
        ("VALOR TOTAL", _money(figures.importe_total), True),
    ]
    return rows


def _info_adicional(factura: Factura) -> list[tuple[str, str]]:
    """The XML's campos adicionales (email first), and the buyer's address when no campo
    already gives one."""
    campos = campos_adicionales(factura)
    direccion = " ".join((factura.comprador.direccion or "").split())
    if direccion and not any(n.lower() in ("dirección", "direccion") for n, _ in campos):
        campos.append(("Dirección", direccion))
    return campos


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("ride.html")


def context(
    factura: Factura,
    access_key: str,
    authorisation_number: str,
    authorised_at: datetime,
    ambiente: str,
    paper: str = "A4",
) -> dict:
    """What the RIDE prints. ValueError when `paper` or `ambiente` is unknown or the clave
    de acceso is malformed or belongs to another comprobante (FacturaError, a ValueError)."""
    if paper not in PAPERS:
        raise ValueError(f"papel desconocido: {paper}")
    if ambiente not in catalogs.AMBIENTES:
        raise ValueError(f"ambiente desconocido: {ambiente}")
    if ambiente != factura.ambiente:
        raise FacturaError("el ambiente no es el de la factura")
    clave = access_key.strip()
    secuencial = secuencial_text(factura.secuencial)
    check_key(factura, clave, factura.estab, factura.pto_emi, secuencial)
    figures = totals(factura.lineas)
    emisor = factura.emisor
    nombre, identificacion = _identificacion(factura)
    return {
        "page_size": PAPERS[paper],
        "sandbox": ambiente == keys.PRUEBAS,
        "sandbox_mark": SANDBOX_MARK,
        "emisor": {
            "ruc": emisor.ruc,
            "razon_social": emisor.razon_social,
            "nombre_comercial": emisor.nombre_comercial,
            "direccion_matriz": emisor.direccion_matriz,
            "direccion_establecimiento": emisor.direccion_establecimiento,
            "contribuyente_especial": emisor.contribuyente_especial,
            "obligado": catalogs.SI if emisor.obligado_contabilidad else catalogs.NO,
            "rimpe": emisor.rimpe,
            "agente_retencion": emisor.agente_retencion,
        },
        "numero": f"{factura.estab}-{factura.pto_emi}-{secuencial}",
        "numero_autorizacion": authorisation_number.strip(),
        "fecha_autorizacion": _authorised_at(authorised_at),
        "ambiente": catalogs.AMBIENTES[ambiente].upper(),
        "emision": "NORMAL",
        "clave": clave,
        "barcode": _barcode(clave),
        "comprador": {
            "nombre": nombre,
            "identificacion": identificacion,
            "tipo": catalogs.TIPOS_IDENTIFICACION.get(factura.comprador.tipo_identificacion, ""),
            "direccion": factura.comprador.direccion,
        },
        "fecha_emision": f"{factura.fecha_emision:%d/%m/%Y}",
        "lineas": [
            {
                "codigo": line.linea.codigo_principal,
                "cantidad": _decimal(line.linea.cantidad),
                "descripcion": line.linea.descripcion,
                "precio_unitario": _decimal(line.linea.precio_unitario),
                "descuento": _money(line.linea.descuento),
                "precio_total": _money(line.subtotal),
            }
            for line in figures.lineas
        ],
        "totales": _totals_rows(figures),
        "pagos": [
            {
                "codigo": pago.forma_pago,
                "nombre": catalogs.FORMAS_PAGO.get(pago.forma_pago, ""),
                "total": _money(pago.total),
                "plazo": "" if pago.plazo is None else f"{Decimal(pago.plazo).normalize():f}",
                "unidad": pago.unidad_tiempo or "",
            }
            for pago in factura.pagos
        ],
        "info_adicional": _info_adicional(factura),
    }


def render_html(*args, **kwargs) -> str:
    """The HTML the RIDE is made of (handy to preview); the arguments of `render_ride`."""
    return _template().render(context(*args, **kwargs))


def render_ride(
    factura: Factura,
    access_key: str,
    authorisation_number: str,
    authorised_at: datetime,
    ambiente: str,
    paper: str = "A4",
) -> bytes:
    """The RIDE of an authorised factura, a PDF.

    `access_key` is the factura's clave de acceso (49 digits), `authorisation_number` SRI's
    número de autorización (the clave itself in the offline scheme), `authorised_at` SRI's
    fechaAutorizacion, `ambiente` "1" (pruebas: the RIDE says it has no tax validity) or "2"
    (producción), `paper` "A4" or "letter". ValueError as `context` says.
    """
    html = render_html(factura, access_key, authorisation_number, authorised_at, ambiente, paper)
    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise RideError(f"xhtml2pdf failed with {status.err} errors")
    return out.getvalue()
