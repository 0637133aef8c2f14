"""The demo merchant: a fictional retail chain with a test CSD, 3 branches and 2,000 open tickets.

Everything but the dates comes from a seeded random generator, so two loads hold the same
products, amounts, order and ticket numbers; the dates are the 60 days before the load, a good
share in the current month (what an invoicing window of "same month" needs).

Amounts follow what the CFDI will say: a ticket's total is `webapp.cfdi.amounts.ticket_total` of
its lines (a line's Importe is round(quantity × unit price, 2), its IVA round(Importe × rate, 2),
half up), the very figures the invoice's SubTotal, Traslados and Total are built from.
"""

from __future__ import annotations

import enum
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from webapp.cfdi.amounts import line_amount, ticket_total
from webapp.cfdi.draft import Line
from webapp.cfdi.testcsd import make_test_csd
from webapp.csd import store_csd
from webapp.models import Branch, Issuer, Ticket, TicketLine, TicketStatus

MEXICO_CITY = ZoneInfo("America/Mexico_City")
CENT = Decimal("0.01")

SLUG = "demo"
# RFC of a persona moral: TDG (Tiendas Demo Gaviota) + 2015-03-12 + homoclave K4 + check digit
# (stdnum.mx.rfc.calc_check_digit("TDG150312K4") == "6"). Made up; not a registered company.
RFC = "TDG150312K46"
LEGAL_NAME = "TIENDAS DEMO LA GAVIOTA"
REGIMEN_FISCAL = "601"  # General de Ley Personas Morales
CP = "06600"  # Juárez, Cuauhtémoc, Ciudad de México
SERIE = "A"

TICKET_COUNT = 2000
DAYS = 60
CURRENT_MONTH_SHARE = 0.4  # drawn inside the current month, on top of the uniform spread
OPENING = time(8, 0)
OPEN_SECONDS = 14 * 3600  # 08:00 to 22:00
SEED = 20_240_601


@dataclass(frozen=True)
class BranchSpec:
    code: str
    name: str
    cp: str
    address: str
    order_digits: int
    ticket_digits: int


BRANCHES: tuple[BranchSpec, ...] = (
    BranchSpec(
        "CENTRO",
        "Sucursal Centro Histórico",
        "06000",
        "Av. 5 de Mayo 32, Centro, Cuauhtémoc, Ciudad de México",
        order_digits=6,
        ticket_digits=8,
    ),
    BranchSpec(
        "POLANCO",
        "Sucursal Polanco",
        "11560",
        "Av. Presidente Masaryk 120, Polanco V Sección, Miguel Hidalgo, Ciudad de México",
        order_digits=7,
        ticket_digits=9,
    ),
    BranchSpec(
        "COYOACAN",
        "Sucursal Coyoacán",
        "04000",
        "Calle Felipe Carrillo Puerto 15, Coyoacán, Ciudad de México",
        order_digits=8,
        ticket_digits=10,
    ),
)


class Tax(enum.Enum):
    """How IVA applies to a product: (tax_factor, tax_rate) of its ticket lines."""

    IVA16 = ("Tasa", Decimal("0.160000"))
    IVA0 = ("Tasa", Decimal("0.000000"))  # basic food, medicines, large water jugs
    EXEMPT = ("Exento", None)  # books, newspapers and magazines (LIVA art. 9, III)

    @property
    def factor(self) -> str:
        return self.value[0]

    @property
    def rate(self) -> Decimal | None:
        return self.value[1]


@dataclass(frozen=True)
class Product:
    """A shelf item; `shelf_price` is what the label says, tax included."""

    description: str
    clave_prod_serv: str
    clave_unidad: str
    tax: Tax
    shelf_price: Decimal
    weight: int = 3  # how often it is bought, relative
    by_weight: bool = False  # sold in kg with a scale: decimal quantities
    max_quantity: int = 3
    unit_price: Decimal = field(init=False)

    def __post_init__(self) -> None:
        factor = 1 + (self.tax.rate or 0)
        object.__setattr__(
            self, "unit_price", (self.shelf_price / factor).quantize(CENT, ROUND_HALF_UP)
        )


def _p(description: str, clave: str, unidad: str, tax: Tax, shelf: str, **kw) -> Product:
    return Product(description, clave, unidad, tax, Decimal(shelf), **kw)


T16, T0, EX = Tax.IVA16, Tax.IVA0, Tax.EXEMPT
# ClaveProdServ and ClaveUnidad from SAT's c_ClaveProdServ and c_ClaveUnidad.
PRODUCTS: tuple[Product, ...] = (
    _p("TORTILLA DE MAIZ", "50221300", "KGM", T0, "24.00", weight=6, by_weight=True),
    _p("BOLILLO", "50181901", "H87", T0, "2.50", weight=6, max_quantity=10),
    _p("PAN BLANCO GRANDE 680 G", "50181901", "H87", T0, "52.00", weight=4),
    _p("LECHE ENTERA 1 L", "50131702", "LTR", T0, "28.50", weight=7, max_quantity=4),
    _p("HUEVO BLANCO 18 PZAS", "50131612", "H87", T0, "64.00", weight=5),
    _p("FRIJOL NEGRO 1 KG", "50401806", "H87", T0, "38.50", weight=4),
    _p("ARROZ SUPER EXTRA 900 G", "50221101", "H87", T0, "29.90", weight=4),
    _p("ACEITE VEGETAL 1 L", "50151513", "LTR", T0, "42.90", weight=3),
    _p("AZUCAR ESTANDAR 1 KG", "50161509", "H87", T0, "33.00", weight=3),
    _p("ATUN EN AGUA 140 G", "50467007", "H87", T0, "21.50", weight=3, max_quantity=4),
    _p("CAFE SOLUBLE 200 G", "50201709", "H87", T0, "119.00", weight=2, max_quantity=1),
    _p("GALLETAS MARIAS 170 G", "50181905", "XPK", T0, "18.00", weight=3),
    _p("SOPA DE PASTA 200 G", "50192902", "H87", T0, "9.50", weight=3, max_quantity=4),
    _p("CEREAL DE MAIZ 500 G", "50221201", "XBX", T0, "64.00", weight=2, max_quantity=1),
    _p("SAL DE MESA 1 KG", "50171551", "H87", T0, "14.50", weight=1, max_quantity=1),
    _p("PLATANO TABASCO", "50301700", "KGM", T0, "24.90", weight=4, by_weight=True),
    _p("JITOMATE SALADET", "50406500", "KGM", T0, "32.00", weight=5, by_weight=True),
    _p("AGUACATE HASS", "50401700", "KGM", T0, "69.00", weight=4, by_weight=True),
    _p("CEBOLLA BLANCA", "50405300", "KGM", T0, "28.00", weight=3, by_weight=True),
    _p("PAPA BLANCA", "50405700", "KGM", T0, "34.00", weight=3, by_weight=True),
    _p("LIMON CON SEMILLA", "50304100", "KGM", T0, "39.90", weight=3, by_weight=True),
    _p("PECHUGA DE POLLO", "50111515", "KGM", T0, "129.00", weight=3, by_weight=True),
    _p("CARNE MOLIDA DE RES", "50111513", "KGM", T0, "165.00", weight=2, by_weight=True),
    _p("QUESO FRESCO", "50131801", "KGM", T0, "140.00", weight=2, by_weight=True),
    _p("AGUA PURIFICADA GARRAFON 20 L", "50202301", "H87", T0, "42.00", weight=2, max_quantity=2),
    _p("PARACETAMOL 500 MG 10 TABLETAS", "51142001", "XBX", T0, "35.00", weight=1, max_quantity=1),
    _p("REFRESCO DE COLA 600 ML", "50202306", "H87", T16, "18.00", weight=6, max_quantity=4),
    _p("REFRESCO DE COLA 2.5 L", "50202306", "H87", T16, "42.00", weight=4, max_quantity=2),
    _p("AGUA NATURAL 1.5 L", "50202301", "H87", T16, "16.00", weight=4, max_quantity=6),
    _p("JUGO DE NARANJA 1 L", "50202304", "LTR", T16, "32.00", weight=3),
    _p("GOMA DE MASCAR MENTA", "50161815", "H87", T16, "12.00", weight=2, max_quantity=3),
    _p("BOLSA DE HIELO 5 KG", "50202302", "H87", T16, "30.00", weight=1, max_quantity=2),
    _p("DETERGENTE EN POLVO 1 KG", "47131811", "H87", T16, "45.00", weight=3, max_quantity=2),
    _p("CLORO 1 L", "47131807", "LTR", T16, "19.00", weight=2, max_quantity=2),
    _p("LAVATRASTES LIQUIDO 750 ML", "47131810", "H87", T16, "36.00", weight=2, max_quantity=1),
    _p("PAPEL HIGIENICO 4 ROLLOS", "14111704", "XPK", T16, "38.00", weight=4, max_quantity=2),
    _p("SERVILLETAS 500 PZAS", "14111705", "XPK", T16, "34.00", weight=2, max_quantity=1),
    _p("JABON DE TOCADOR 150 G", "53131608", "H87", T16, "22.00", weight=3),
    _p("SHAMPOO 400 ML", "53131602", "H87", T16, "69.00", weight=2, max_quantity=1),
    _p("PASTA DENTAL 100 ML", "53131502", "H87", T16, "35.00", weight=2, max_quantity=2),
    _p("PAÑALES ETAPA 3 40 PZAS", "53102305", "XPK", T16, "259.00", weight=1, max_quantity=1),
    _p("PILAS ALCALINAS AA 4 PZAS", "26111702", "XPK", T16, "89.00", weight=1, max_quantity=1),
    _p("FOCO LED 9 W", "39101600", "H87", T16, "39.00", weight=1, max_quantity=4),
    _p("CROQUETAS PARA PERRO 2 KG", "10121801", "H87", T16, "129.00", weight=2, max_quantity=1),
    _p("CUADERNO PROFESIONAL 100 HOJAS", "14111514", "H87", T16, "45.00", weight=1, max_quantity=4),
    _p("PERIODICO DEL DIA", "55101504", "H87", EX, "15.00", weight=2, max_quantity=1),
    _p("REVISTA DE ESPECTACULOS", "55101506", "H87", EX, "35.00", weight=1, max_quantity=1),
    _p("LIBRO PARA COLOREAR", "55101507", "H87", EX, "49.00", weight=1, max_quantity=2),
    _p("NOVELA DE BOLSILLO", "55101510", "H87", EX, "149.00", weight=1, max_quantity=1),
)

LINES_PER_TICKET = (1, 2, 3, 4, 5, 6)
LINES_WEIGHTS = (25, 25, 20, 13, 10, 7)


@dataclass(frozen=True)
class DemoLine:
    product: Product
    quantity: Decimal

    def as_line(self) -> Line:
        """The CFDI line this ticket line becomes."""
        product = self.product
        return Line(
            description=product.description,
            clave_prod_serv=product.clave_prod_serv,
            clave_unidad=product.clave_unidad,
            quantity=self.quantity,
            unit_price=product.unit_price,
            objeto_imp="02",
            tax_factor=product.tax.factor,
            tax_rate=product.tax.rate,
        )

    @property
    def amount(self) -> Decimal:
        return line_amount(self.as_line())


@dataclass
class DemoTicket:
    branch: int  # index in BRANCHES
    order_number: str
    sold_at: datetime
    lines: list[DemoLine]
    ticket_number: str = ""

    @property
    def total(self) -> Decimal:
        return ticket_total(line.as_line() for line in self.lines)


def _quantity(rng: random.Random, product: Product) -> Decimal:
    if product.by_weight:
        return Decimal(rng.randint(250, 2500)) / 1000  # a scale reading in kg, to the gram
    options = range(1, product.max_quantity + 1)
    return Decimal(rng.choices(options, [1 / q**2 for q in options])[0])  # mostly 1 or 2


def _sold_at(u_month: float, u_day: float, u_time: float, now: datetime) -> datetime:
    """A sale time in the DAYS before `now`, during opening hours, from three uniform draws."""
    local_now = now.astimezone(MEXICO_CITY)
    today = local_now.date()
    span = today.day if u_month < CURRENT_MONTH_SHARE else DAYS
    day: date = today - timedelta(days=int(u_day * span))
    sold = datetime.combine(day, OPENING, MEXICO_CITY) + timedelta(
        seconds=int(u_time * OPEN_SECONDS)
    )
    if sold >= local_now:  # later today: squeeze into the part of today already gone
        midnight = datetime.combine(today, time(0), MEXICO_CITY)
        sold = midnight + (local_now - midnight) * u_time
    return sold.astimezone(UTC).replace(microsecond=0)


def generate_tickets(
    now: datetime, count: int = TICKET_COUNT, seed: int = SEED
) -> list[DemoTicket]:
    """`count` tickets over the DAYS before `now`; the same ones for the same seed, dates aside.

    Ticket numbers run in sale order per branch, with gaps (sales nobody will invoice).
    """
    content, dates = random.Random(seed), random.Random(seed + 1)
    weights = [p.weight for p in PRODUCTS]
    tickets: list[DemoTicket] = []
    for _ in range(count):
        branch = content.randrange(len(BRANCHES))
        digits = BRANCHES[branch].order_digits
        order = str(content.randrange(10 ** (digits - 1), 10**digits))
        size = content.choices(LINES_PER_TICKET, LINES_WEIGHTS)[0]
        products: list[Product] = []
        while len(products) < size:
            product = content.choices(PRODUCTS, weights)[0]
            if product not in products:
                products.append(product)
        lines = [DemoLine(p, _quantity(content, p)) for p in products]
        sold_at = _sold_at(dates.random(), dates.random(), dates.random(), now)
        tickets.append(DemoTicket(branch, order, sold_at, lines))

    for index, spec in enumerate(BRANCHES):
        low = 10 ** (spec.ticket_digits - 1)
        number = content.randrange(low, 3 * low)
        for ticket in sorted((t for t in tickets if t.branch == index), key=lambda t: t.sold_at):
            number += content.randint(1, 40)
            ticket.ticket_number = str(number)
    return tickets


@dataclass(frozen=True)
class LoadResult:
    created: bool
    issuer: Issuer
    branches: int
    tickets: int


def demo_issuer(session: Session) -> Issuer | None:
    return session.scalar(select(Issuer).where(Issuer.slug == SLUG))


def load_demo(session: Session, fernet: Fernet, now: datetime | None = None) -> LoadResult:
    """Create the demo merchant unless it exists; commits. Idempotent: a second call only counts.

    `fernet` (webapp.crypto) encrypts the CSD's .key and password at rest.
    """
    if existing := demo_issuer(session):
        return LoadResult(False, existing, *_counts(session, existing))
    now = now or datetime.now(UTC)

    issuer = Issuer(
        slug=SLUG,
        rfc=RFC,
        legal_name=LEGAL_NAME,
        regimen_fiscal=REGIMEN_FISCAL,
        cp=CP,
        serie=SERIE,
        next_folio=1,
    )
    password = secrets.token_urlsafe(18)
    certificate, key = make_test_csd(RFC, LEGAL_NAME, password, now=now)
    store_csd(issuer, certificate, key, password, fernet)
    branches = [
        Branch(code=b.code, name=b.name, cp=b.cp, address=b.address, active=True) for b in BRANCHES
    ]
    issuer.branches = branches
    session.add(issuer)
    session.flush()

    tickets = generate_tickets(now)
    _insert_tickets(session, [b.id for b in branches], tickets)
    session.commit()
    return LoadResult(True, issuer, len(branches), len(tickets))


def _insert_tickets(session: Session, branch_ids: list[int], tickets: list[DemoTicket]) -> None:
    """Bulk INSERTs: one for the tickets (returning their ids, in order), one for the lines."""
    ids = session.scalars(
        insert(Ticket).returning(Ticket.id, sort_by_parameter_order=True),
        [
            {
                "branch_id": branch_ids[t.branch],
                "order_number": t.order_number,
                "ticket_number": t.ticket_number,
                "sold_at": t.sold_at,
                "total": t.total,
                "currency": "MXN",
                "status": TicketStatus.OPEN,
            }
            for t in tickets
        ],
    ).all()
    session.execute(insert(TicketLine), list(_line_rows(zip(ids, tickets, strict=True))))


def _line_rows(pairs: Iterable[tuple[int, DemoTicket]]) -> Iterable[dict]:
    for ticket_id, ticket in pairs:
        for position, line in enumerate(ticket.lines, start=1):
            product = line.product
            yield {
                "ticket_id": ticket_id,
                "position": position,
                "description": product.description,
                "clave_prod_serv": product.clave_prod_serv,
                "clave_unidad": product.clave_unidad,
                "quantity": line.quantity,
                "unit_price": product.unit_price,
                "objeto_imp": "02",
                "tax_factor": product.tax.factor,
                "tax_rate": product.tax.rate,
            }


def _counts(session: Session, issuer: Issuer) -> tuple[int, int]:
    branches = session.scalar(
        select(func.count()).select_from(Branch).where(Branch.issuer_id == issuer.id)
    )
    tickets = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .join(Branch)
        .where(Branch.issuer_id == issuer.id, Ticket.status == TicketStatus.OPEN)
    )
    return branches or 0, tickets or 0
