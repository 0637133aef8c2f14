"""The sample SRI factura the SRI tests start from (test_sri_factura, test_sri_ride,
test_sri_reading): an emisor, a comprador and three lines at IVA 15 % (with a descuento),
0 % and exento; `factura(**changes)` varies it, its pago following its lines' total."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

from webapp.sri import access_key, catalogs
from webapp.sri.factura import (
    Comprador,
    Emisor,
    Factura,
    Linea,
    Pago,
    access_key_of,
    totals,
)

D = Decimal
RUC = "1792060346001"
FECHA = date(2025, 3, 14)

EMISOR = Emisor(
    ruc=RUC,
    razon_social="Telefónica Andina de Prueba S.A.",
    nombre_comercial="Andinatel Demo",
    direccion_matriz="Av. Amazonas N34-120 y Av. Atahualpa, Quito",
    direccion_establecimiento="Av. 9 de Octubre 100, Guayaquil",
    obligado_contabilidad=True,
    contribuyente_especial="5368",
    rimpe=None,
)
COMPRADOR = Comprador(
    tipo_identificacion=catalogs.CEDULA,
    identificacion="1710034065",
    razon_social="María José Pérez Núñez",
    direccion="Calle Olmedo 12-34, Cuenca",
    email="maria@example.com",
)
LINEAS = (
    # 3 × 10.333333 = 30.999999 − 1.00 → 30.00; IVA 15 % = 4.50
    Linea("PLAN-01", "Plan móvil 30 GB", D("3"), D("10.333333"), catalogs.IVA_15, D("1.00")),
    # 2.5 × 4.10 = 10.25; IVA 0 %
    Linea("REC-02", "Recarga de saldo", D("2.5"), D("4.10"), catalogs.IVA_0),
    # 1 × 7.77 = 7.77; exento
    Linea("SEG-03", "Seguro de equipo", D("1"), D("7.77"), catalogs.EXENTO_IVA),
)
TOTAL = D("52.52")  # 30.00 + 4.50 + 10.25 + 7.77


def factura(**changes) -> Factura:
    """The sample factura with `changes`; unless they give its pagos, one pago (20, 30 days)
    of its lines' importe total."""
    lineas = changes.get("lineas", LINEAS)
    base = Factura(
        emisor=EMISOR,
        ambiente=access_key.PRUEBAS,
        estab="001",
        pto_emi="002",
        secuencial=123,
        fecha_emision=FECHA,
        comprador=COMPRADOR,
        lineas=lineas,
        pagos=(Pago("20", totals(lineas).importe_total, D("30"), "dias"),),
        info_adicional=(("Teléfono", "+593 99 123 4567"), ("Contrato", "C00000042")),
    )
    return dataclasses.replace(base, **changes)


def key(sample: Factura) -> str:
    """Its clave de acceso, with a fixed código numérico."""
    return access_key_of(sample, codigo_numerico="12345678")
