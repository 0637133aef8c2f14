"""The representación impresa of a stamped CFDI 4.0, as a PDF (xhtml2pdf).

Everything printed comes from the stamped XML itself; catalog names from SAT's catalogs.
`verification_url` is the QR's content, per Anexo 20 (CFDI 3.3 and 4.0):

    https://verificacfdi.facturaelectronica.sat.gob.mx/default.aspx?id=UUID&re=RFC_EMISOR
        &rr=RFC_RECEPTOR&tt=TOTAL&fe=LAST8_OF_SELLO

where tt is the Total "a 25 posiciones como máximo (18 enteros, el punto, 6 decimales) omitiendo
los ceros no significativos": no leading zeros, trailing zeros of the decimals dropped but one
kept (116.00 → "116.0", 1234.50 → "1234.5"; the zero-padded 10.6 form was CFDI 3.2's), and an
"&" in an RFC written "&amp;".
"""

from __future__ import annotations

import base64
import functools
import io
import re
from decimal import Decimal
from pathlib import Path

import jinja2
import segno
from lxml import etree
from satcfdi import catalogs as sat_catalogs
from xhtml2pdf import pisa

from webapp import images
from webapp.cfdi import catalogs
from webapp.cfdi.cadena import find_tfd, tfd_cadena_original
from webapp.cfdi.words import amount_in_words
from webapp.cfdi.xsd import CFDI_NS, InvalidCfdi, parse

VERIFICATION_HOST = "verificacfdi.facturaelectronica.sat.gob.mx"
VERIFICATION_BASE = f"https://{VERIFICATION_HOST}/default.aspx"
_NS = {"cfdi": CFDI_NS}
QR_MASK = 2  # columns pattern; see qr_data_uri
_TIPOS = {"I": "Ingreso", "E": "Egreso", "T": "Traslado", "N": "Nómina", "P": "Pago"}
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULT_ACCENT = "#333333"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _branding(logo: bytes | None, color: str | None) -> dict:
    """The issuer's main colour (for headings and the table header, white text on it) and
    its logo as a data URI. Only a PNG logo is printed: xhtml2pdf draws no SVG. The PNG is
    printed re-encoded (webapp.images.safe_png, cached): a logo stored before the upload checks,
    too large in pixels or damaged, is left out rather than decoded for every invoice."""
    png = images.safe_png(bytes(logo)) if logo and bytes(logo).startswith(PNG_SIGNATURE) else None
    width = height = 0
    if png and len(png) >= 24 and png[12:16] == b"IHDR":
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    if not (width and height):
        png = None
    else:  # at most 40 pt high and 160 pt wide, proportions kept
        scale = min(40 / height, 160 / width)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return {
        "accent": color.lower() if color and _COLOR.fullmatch(color) else DEFAULT_ACCENT,
        "logo": "data:image/png;base64," + base64.b64encode(png).decode() if png else None,
        "logo_size": (width, height),
    }


class PdfError(RuntimeError):
    """xhtml2pdf could not lay the document out."""


def format_total(total: Decimal) -> str:
    """The QR's tt: the Total without non-significant zeros, one decimal at least."""
    text = f"{Decimal(total):.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def verification_url(
    uuid: str, rfc_emisor: str, rfc_receptor: str, total: Decimal, sello: str
) -> str:
    """The SAT verification address printed as the invoice's QR code."""
    return (
        f"{VERIFICATION_BASE}?id={uuid}"
        f"&re={rfc_emisor.replace('&', '&amp;')}"
        f"&rr={rfc_receptor.replace('&', '&amp;')}"
        f"&tt={format_total(total)}"
        f"&fe={sello[-8:]}"
    )


@functools.lru_cache(maxsize=256)
def qr_data_uri(text: str) -> str:
    """A PNG data URI of `text` as a QR code (error correction M, standard quiet zone).

    The mask is fixed: every mask pattern is valid QR, and segno's choice of the best one
    (scoring all eight in Python) costs ~10 ms, more than the rest of the code together.
    """
    return segno.make(text, error="m", micro=False, mask=QR_MASK).png_data_uri(scale=3, border=4)


def money(value: str | Decimal) -> str:
    """ "$1,234.56"."""
    return f"${Decimal(value):,.2f}"


def _quantity(value: str) -> str:
    return f"{Decimal(value).normalize():f}"


def _percent(rate: str | None) -> str:
    return f"{(Decimal(rate) * 100).normalize():f} %" if rate is not None else ""


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("invoice.html")


def _one(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path, _NS)
    if found is None:
        raise InvalidCfdi([f"falta {path}"])
    return found


def _line_tax(concepto: etree._Element) -> str:
    if concepto.get("ObjetoImp") == "01":
        return "No objeto"
    traslado = concepto.find("cfdi:Impuestos/cfdi:Traslados/cfdi:Traslado", _NS)
    if traslado is None:
        return catalogs.objeto_imp_name(concepto.get("ObjetoImp", ""))
    if traslado.get("TipoFactor") == "Exento":
        return "Exento"
    return _percent(traslado.get("TasaOCuota"))


def _catalog_name(catalog: str, code: str) -> str:
    value = sat_catalogs.select(catalog, code) if code else None
    return value if isinstance(value, str) else ""


def _informacion_global(root: etree._Element) -> dict | None:
    """A factura global's Periodicidad, Meses and Año, with their c_Periodicidad and c_Meses
    names ("01 - Diario", "13 - Enero-Febrero"); None for any other CFDI."""
    info = root.find("cfdi:InformacionGlobal", _NS)
    if info is None:
        return None
    periodicidad, meses = info.get("Periodicidad", ""), info.get("Meses", "")
    return {
        "periodicidad": periodicidad,
        "periodicidad_name": _catalog_name("C756_c_Periodicidad", periodicidad),
        "meses": meses,
        "meses_name": _catalog_name("C756_c_Meses", meses),
        "ano": info.get("Año", ""),
    }


def _relacionados(root: etree._Element) -> list[dict]:
    """CfdiRelacionados: each TipoRelacion with its c_TipoRelacion name and its UUIDs (a
    replacement names the CFDI it replaces, TipoRelacion 04)."""
    return [
        {
            "tipo": node.get("TipoRelacion", ""),
            "tipo_name": _catalog_name("C756_c_TipoRelacion", node.get("TipoRelacion", "")),
            "uuids": [r.get("UUID", "") for r in node.findall("cfdi:CfdiRelacionado", _NS)],
        }
        for node in root.findall("cfdi:CfdiRelacionados", _NS)
    ]


def context(
    xml: bytes,
    *,
    branch_name: str | None,
    sandbox: bool,
    logo: bytes | None = None,
    color: str | None = None,
) -> dict:
    """What the template prints, read from the stamped XML (and the issuer's logo and main
    colour, when given)."""
    root = parse(xml)
    tfd = find_tfd(root)
    if tfd is None:
        raise InvalidCfdi(["el CFDI no está timbrado (falta el TimbreFiscalDigital)"])
    emisor, receptor = _one(root, "cfdi:Emisor"), _one(root, "cfdi:Receptor")
    total = Decimal(root.get("Total", "0"))
    serie_folio = "-".join(x for x in (root.get("Serie"), root.get("Folio")) if x)
    lines = [
        {
            "cantidad": _quantity(c.get("Cantidad", "0")),
            "clave_unidad": c.get("ClaveUnidad"),
            "unidad": c.get("Unidad") or catalogs.unidad_name(c.get("ClaveUnidad", "")),
            "clave_prod_serv": c.get("ClaveProdServ"),
            "descripcion": c.get("Descripcion"),
            "no_identificacion": c.get("NoIdentificacion"),
            "iva": _line_tax(c),
            "valor_unitario": money(c.get("ValorUnitario", "0")),
            "importe": money(c.get("Importe", "0")),
        }
        for c in root.iterfind("cfdi:Conceptos/cfdi:Concepto", _NS)
    ]
    taxes = []
    for t in root.iterfind("cfdi:Impuestos/cfdi:Traslados/cfdi:Traslado", _NS):
        name = "IVA" if t.get("Impuesto") == "002" else t.get("Impuesto")
        if t.get("TipoFactor") == "Exento":
            taxes.append(
                {"label": f"{name} exento", "base": money(t.get("Base", "0")), "amount": "—"}
            )
        else:
            label = f"{name} {_percent(t.get('TasaOCuota'))}"
            taxes.append(
                {
                    "label": label,
                    "base": money(t.get("Base", "0")),
                    "amount": money(t.get("Importe", "0")),
                }
            )
    url = verification_url(
        tfd.get("UUID", ""),
        emisor.get("Rfc", ""),
        receptor.get("Rfc", ""),
        total,
        root.get("Sello", ""),
    )
    moneda = root.get("Moneda", "MXN")
    tipo = root.get("TipoDeComprobante", "")
    return {
        "title": f"Factura {serie_folio} {tfd.get('UUID')}",
        "sandbox": sandbox,
        "branch_name": branch_name,
        "version": root.get("Version"),
        "tipo": f"{tipo} - {_TIPOS.get(tipo, '')}",
        "serie_folio": serie_folio,
        "fecha": root.get("Fecha"),
        "lugar_expedicion": root.get("LugarExpedicion"),
        "moneda": moneda,
        "exportacion": root.get("Exportacion"),
        "forma_pago": root.get("FormaPago", ""),
        "forma_pago_name": catalogs.forma_pago_name(root.get("FormaPago", "")),
        "metodo_pago": root.get("MetodoPago", ""),
        "metodo_pago_name": catalogs.metodo_pago_name(root.get("MetodoPago", "")),
        "emisor": {
            "rfc": emisor.get("Rfc"),
            "nombre": emisor.get("Nombre"),
            "regimen": emisor.get("RegimenFiscal"),
            "regimen_name": catalogs.regimen_name(emisor.get("RegimenFiscal", "")),
        },
        "informacion_global": _informacion_global(root),
        "relacionados": _relacionados(root),
        "receptor": {
            "rfc": receptor.get("Rfc"),
            "nombre": receptor.get("Nombre"),
            "cp": receptor.get("DomicilioFiscalReceptor"),
            "regimen": receptor.get("RegimenFiscalReceptor"),
            "regimen_name": catalogs.regimen_name(receptor.get("RegimenFiscalReceptor", "")),
            "uso": receptor.get("UsoCFDI"),
            "uso_name": catalogs.uso_cfdi_name(receptor.get("UsoCFDI", "")),
        },
        "lines": lines,
        "taxes": taxes,
        "subtotal": money(root.get("SubTotal", "0")),
        "total": money(total),
        "total_words": amount_in_words(total, moneda),
        "uuid": tfd.get("UUID"),
        "fecha_timbrado": tfd.get("FechaTimbrado"),
        "rfc_prov_certif": tfd.get("RfcProvCertif"),
        "no_certificado": root.get("NoCertificado"),
        "no_certificado_sat": tfd.get("NoCertificadoSAT"),
        "sello_cfd": tfd.get("SelloCFD"),
        "sello_sat": tfd.get("SelloSAT"),
        "cadena_tfd": tfd_cadena_original(tfd),
        "verification_url": url,
        "verification_host": VERIFICATION_HOST,
        "qr": qr_data_uri(url),
        **_branding(logo, color),
    }


def render_html(
    xml: bytes,
    *,
    branch_name: str | None = None,
    sandbox: bool = False,
    logo: bytes | None = None,
    color: str | None = None,
) -> str:
    """The HTML the PDF is made of (also handy to preview)."""
    return _template().render(
        context(xml, branch_name=branch_name, sandbox=sandbox, logo=logo, color=color)
    )


def render_pdf(
    xml: bytes,
    *,
    branch_name: str | None,
    sandbox: bool,
    logo: bytes | None = None,
    color: str | None = None,
) -> bytes:
    """The PDF of a stamped CFDI; `sandbox` prints "SIN VALIDEZ FISCAL — PRUEBAS"; `logo` (a
    PNG; anything else is left out) and `color` ("#rrggbb") brand it as the issuer's."""
    html = render_html(xml, branch_name=branch_name, sandbox=sandbox, logo=logo, color=color)
    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise PdfError(f"xhtml2pdf failed with {status.err} errors")
    return out.getvalue()
