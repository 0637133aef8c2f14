"""An SRI factura read back from its XML (webapp.sri.reading): build → sign → read is the same
Factura, over varied invoices, and the RIDE prints from what was read."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import sri_samples as samples
from webapp.sri import catalogs
from webapp.sri.factura import (
    Comprador,
    Factura,
    Linea,
    Pago,
    access_key_of,
    build_xml,
    totals,
)
from webapp.sri.p12 import load_p12
from webapp.sri.reading import ReadingError, factura_from_xml
from webapp.sri.ride import render_ride
from webapp.sri.signing import sign
from webapp.sri.testp12 import make_test_p12

pytestmark = pytest.mark.run_once  # the same on both databases: run once

D = Decimal
RUC = samples.RUC
PASSWORD = "Clave-de-prueba-2024"
NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
ECUADOR = timezone(timedelta(hours=-5))

EMISOR, COMPRADOR, LINEAS = samples.EMISOR, samples.COMPRADOR, samples.LINEAS
_factura = samples.factura


def _split(total: Decimal, parts: int) -> tuple[Pago, ...]:
    """`total` paid in `parts` payments of different formas de pago."""
    formas = ("01", "19", "20", "16")
    share = (total / parts).quantize(D("0.01"))
    amounts = [share] * (parts - 1) + [total - share * (parts - 1)]
    return tuple(Pago(formas[i % len(formas)], amount) for i, amount in enumerate(amounts))


LINEAS_CONSTRUCCION = (
    Linea("M-1", "Cemento", D("12"), D("8.25"), catalogs.IVA_5, D("3.50")),
    Linea("M-2", "Servicio técnico", D("0.5"), D("40"), catalogs.IVA_15),
    Linea("", "Sin código", D("1.123456"), D("0.999999"), catalogs.NO_OBJETO_IVA),
)
FACTURAS = {
    "general": _factura(),
    "rimpe-without-email": _factura(
        emisor=dataclasses.replace(
            EMISOR,
            rimpe=catalogs.RIMPE_EMPRENDEDOR,
            contribuyente_especial=None,
            nombre_comercial=None,
            direccion_establecimiento=None,
            obligado_contabilidad=False,
        ),
        comprador=dataclasses.replace(COMPRADOR, email=None, direccion=None),
        info_adicional=(),
    ),
    "negocio-popular-agent-several-payments": _factura(
        emisor=dataclasses.replace(
            EMISOR, rimpe=catalogs.RIMPE_NEGOCIO_POPULAR, agente_retencion="1"
        ),
        comprador=Comprador(catalogs.RUC, "1790016919001", "Empresa Compradora S.A."),
        lineas=LINEAS_CONSTRUCCION,
        pagos=_split(totals(LINEAS_CONSTRUCCION).importe_total, 3),
    ),
    "consumidor-final": _factura(
        comprador=Comprador(catalogs.CONSUMIDOR_FINAL, "9999999999999", "CONSUMIDOR FINAL"),
        lineas=(Linea("CAFE", "Café", D("2"), D("1.50"), catalogs.IVA_15),),
        info_adicional=(("Mesa", "4"),),
    ),
    "passport": _factura(
        comprador=Comprador(catalogs.PASAPORTE, "X1234567", "John Smith", email="j@example.com"),
        info_adicional=(("Habitación", "204"), ("Noches", "2"), ("Agente", "Ana")),
    ),
}


@pytest.fixture(scope="module")
def key():
    data = make_test_p12(RUC, EMISOR.razon_social, PASSWORD, now=NOW)
    return load_p12(data, PASSWORD, RUC, NOW)


@pytest.mark.parametrize("name", sorted(FACTURAS))
def test_build_sign_read_gives_the_same_factura(name, key):
    factura = FACTURAS[name]
    clave = access_key_of(factura, "12345678")
    unsigned = build_xml(factura, clave)
    signed = sign(unsigned, key, now=NOW)
    assert factura_from_xml(signed) == (factura, clave)
    assert factura_from_xml(unsigned) == (factura, clave)
    # What was read builds the very same XML again.
    read, _ = factura_from_xml(signed)
    assert build_xml(read, clave) == unsigned


_word = st.from_regex(r"[A-Za-zñáéíóúÑ0-9&<>.,]{1,8}", fullmatch=True)
_text = st.lists(_word, min_size=1, max_size=4).map(" ".join)
_linea = st.builds(
    Linea,
    codigo_principal=st.from_regex(r"[A-Z0-9-]{0,10}", fullmatch=True),
    descripcion=_text,
    cantidad=st.decimals(min_value=D("0.000001"), max_value=D("500"), places=6),
    precio_unitario=st.decimals(min_value=D("0"), max_value=D("999.999999"), places=6),
    codigo_porcentaje=st.sampled_from(
        [catalogs.IVA_0, catalogs.IVA_5, catalogs.IVA_15, catalogs.NO_OBJETO_IVA, "7"]
    ),
    descuento=st.just(D("0.00")),
)


@st.composite
def _facturas(draw) -> Factura:
    lineas = []
    for linea in draw(st.lists(_linea, min_size=1, max_size=4)):
        bruto = (linea.cantidad * linea.precio_unitario).quantize(D("0.01"))
        descuento = draw(st.decimals(min_value=D("0"), max_value=bruto, places=2))
        lineas.append(dataclasses.replace(linea, descuento=descuento))
    lineas = tuple(lineas)
    total = totals(lineas).importe_total
    info = draw(
        st.lists(
            st.tuples(_text, _text),
            max_size=3,
        )
    )
    info = tuple((n, v) for n, v in info if n.lower() not in ("email", "correo", "e-mail"))
    return _factura(
        emisor=dataclasses.replace(
            EMISOR,
            rimpe=draw(st.sampled_from([None, *catalogs.RIMPE])),
            contribuyente_especial=draw(st.sampled_from([None, "5368", "ABC123"])),
        ),
        secuencial=draw(st.integers(min_value=1, max_value=999_999_999)),
        comprador=dataclasses.replace(
            COMPRADOR, email=draw(st.sampled_from([None, "a@example.com"]))
        ),
        lineas=lineas,
        pagos=_split(total, draw(st.integers(min_value=1, max_value=3) if total else st.just(1))),
        info_adicional=info,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(factura=_facturas())
def test_read_is_the_inverse_of_build_for_any_invoice(factura):
    clave = access_key_of(factura, "87654321")
    assert factura_from_xml(build_xml(factura, clave)) == (factura, clave)


def test_the_ride_prints_from_the_read_factura(key):
    factura = FACTURAS["negocio-popular-agent-several-payments"]
    clave = access_key_of(factura, "12345678")
    signed = sign(build_xml(factura, clave), key, now=NOW)
    read, read_key = factura_from_xml(signed)
    pdf = render_ride(read, read_key, read_key, NOW.astimezone(ECUADOR), read.ambiente)
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


@pytest.mark.parametrize(
    "xml",
    [
        b"",
        b"not xml",
        b"<notaCredito/>",
        b'<factura id="comprobante" version="1.1.0"/>',
        b'<!DOCTYPE x [<!ENTITY e "1">]><factura/>',
    ],
)
def test_what_is_not_a_readable_factura_is_refused(xml):
    with pytest.raises(ReadingError):
        factura_from_xml(xml)


def test_a_factura_with_a_broken_figure_is_refused():
    factura = FACTURAS["general"]
    xml = build_xml(factura, access_key_of(factura, "12345678"))
    with pytest.raises(ReadingError, match="cantidad"):
        factura_from_xml(xml.replace(b"<cantidad>3.000000<", b"<cantidad>tres<", 1))
    with pytest.raises(ReadingError, match="fechaEmision"):
        factura_from_xml(xml.replace(b"14/03/2025", b"2025-03-14"))
