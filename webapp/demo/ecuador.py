"""The Ecuadorian demo (SRI): a telecom provider billing monthly services and a shop with two
branches, both fictional, with test .p12 signing certificates generated on this machine.

    loaded = load_ecuador_demo(session, fernet, now)        # idempotent; commits
    bills = load_ecuador_history(session, stamping, now)    # 6 months of bills (billing run)

Both issuers have `country = "EC"`: `rfc` holds the RUC, `legal_name` the razón social,
`regimen_fiscal` and `cp` are "" (Mexican fields), every branch is an establecimiento with one
punto de emisión (`estab`, `pto_emi`). Amounts are in USD with IVA 15 % (SRI code 4) and, for
basic food and medicine in the shop, 0 %; a ticket's total is `webapp.cfdi.amounts.ticket_total`
of its lines, the rounding SRI's factura uses too (webapp.sri.factura).

Deterministic (seeded random generators) but the dates: the shop's ticket numbers, order
numbers, products and totals are the same on every machine, only their sale times follow the
day of the load. The RUCs and cédulas are made up, with valid check digits (stdnum.ec).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from webapp.cfdi.amounts import ticket_total
from webapp.cfdi.draft import Line
from webapp.demo import services
from webapp.models import (
    Branch,
    Issuer,
    LineKind,
    ServiceAccount,
    ServiceLine,
    Ticket,
    TicketLine,
    TicketStatus,
)
from webapp.services.stamping import Stamping
from webapp.sri import catalogs
from webapp.sri.keystore import store_p12
from webapp.sri.testp12 import make_test_p12

ECUADOR = ZoneInfo("America/Guayaquil")  # mainland Ecuador, UTC-5 all year
CENT = Decimal("0.01")
IVA_15 = Decimal("0.150000")
IVA_0 = Decimal("0.000000")

# --- Made-up identifications with valid check digits ------------------------------------------


def cedula(body: str) -> str:
    """A cédula: `body` (9 digits: province 01-24, third digit 0-5) and its modulo-10 digit."""
    total = 0
    for position, digit in enumerate(body):
        product = int(digit) * (2 if position % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return body + str((10 - total % 10) % 10)


def sociedad_ruc(body: str) -> str:
    """A sociedad's RUC: `body` (9 digits, third digit 9), its modulo-11 digit and 001; ValueError
    for a body without one (remainder 1)."""
    remainder = sum(w * int(d) for w, d in zip((4, 3, 2, 7, 6, 5, 4, 3, 2), body, strict=True)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    if check == 10:
        raise ValueError(f"{body} has no RUC check digit")
    return f"{body}{check}001"


def holder_cedula(index: int) -> str:
    """The index-th demo holder's cédula: Pichincha (17) or Guayas (09), distinct per index."""
    return cedula(f"{('17', '09')[index % 2]}{index % 6}{index:06d}")


def mobile_number(index: int) -> str:
    """The Ecuadorian demo's index-th mobile number, +593 99 800 0000 onwards (E.164;
    nationally 099 800 0000)."""
    return f"+59399800{index:04d}"


def contract_number(index: int) -> str:
    return f"EC{index:08d}"


# --- The telecom provider ----------------------------------------------------------------------

SERVICES_SLUG = "andina-demo"
SERVICES_RUC = sociedad_ruc("179314562")  # 1793145620001, a sociedad (third digit 9)
SERVICES_LEGAL_NAME = "TELECOMUNICACIONES ANDINA DEMO S.A."
SERVICES_TRADE_NAME = "Andina Móvil Demo"
SERVICES_ADDRESS = "Av. República de El Salvador N34-183 y Suiza, Quito"
SERVICES_FORMAS_PAGO = "20,19,16,01"

TERMS_VERSION = "2026-01"
TERMS = """Términos y Condiciones del Servicio (versión {version})

1. Mi Andina Demo le permite consultar sus líneas, sus facturas electrónicas y su estado de
   cuenta.
2. Para agregar una línea usted recibe un código por SMS en ese número: sólo el titular o
   quien tenga el teléfono puede agregarla.
3. Sus datos personales se tratan conforme a la Ley Orgánica de Protección de Datos Personales
   y a la política de privacidad del proveedor.
"""

SERVICE_TYPES = (
    ("MOVIL", "Móvil", LineKind.PHONE),
    ("HOGAR", "Hogar (internet y teléfono fijo)", LineKind.CONTRACT),
    ("TV", "Televisión", LineKind.CONTRACT),
)
PLANS = (
    # code, type, name, monthly fee before IVA 15 % (USD; with IVA a round figure)
    ("M-8GB", "MOVIL", "Plan Conecta 8 GB", Decimal("13.04")),  # 15.00
    ("M-20GB", "MOVIL", "Plan Conecta 20 GB", Decimal("21.74")),  # 25.00
    ("M-ILIM", "MOVIL", "Plan Conecta Ilimitado", Decimal("34.78")),  # 40.00
    ("H-100", "HOGAR", "Internet 100 Mbps + línea fija", Decimal("26.09")),  # 30.00
    ("H-300", "HOGAR", "Internet 300 Mbps + línea fija", Decimal("39.13")),  # 45.00
    ("TV-BAS", "TV", "TV Básica 90 canales", Decimal("17.39")),  # 20.00
)
# Holders' companies (sociedades) that gave a RUC for their invoices.
COMPANIES = (
    (sociedad_ruc("179265318"), "COMERCIAL PICHINCHA DEMO CIA. LTDA."),
    (sociedad_ruc("099176543"), "EXPORTADORA GUAYAS DEMO S.A."),
)
GIVEN = ("María", "José", "Juan", "Fernanda", "Luis", "Ana", "Carlos", "Gabriela", "Diego", "Sofía")
SURNAMES = ("Andrade", "Zambrano", "Vera", "Mora", "Cedeño", "Torres", "Salazar", "Paredes")

# --- The shop ----------------------------------------------------------------------------------

SHOP_SLUG = "quito-demo"
SHOP_OWNER_CEDULA = cedula("170456789")  # the owner's cédula: a persona natural's RUC is it + 001
SHOP_RUC = f"{SHOP_OWNER_CEDULA}001"
SHOP_LEGAL_NAME = "MORALES VACA LUCIA FERNANDA"
SHOP_TRADE_NAME = "Víveres La Quiteña Demo"
SHOP_ADDRESS = "Av. Amazonas N24-155 y Jorge Washington, Quito"
SHOP_FORMAS_PAGO = "01,16,19,20"


@dataclass(frozen=True)
class ShopBranch:
    code: str
    name: str
    address: str
    estab: str


SHOP_BRANCHES = (
    ShopBranch("QUITO", "Local Quito (La Mariscal)", SHOP_ADDRESS, "001"),
    ShopBranch(
        "GUAYAQUIL",
        "Local Guayaquil (Urdesa)",
        "Av. Víctor Emilio Estrada 812 y Guayacanes, Guayaquil",
        "002",
    ),
)


@dataclass(frozen=True)
class Product:
    """A shelf item; `shelf_price` is the label's, IVA included."""

    code: str  # the shop's product code (codigoPrincipal-like; TicketLine.clave_prod_serv)
    description: str
    rate: Decimal
    shelf_price: Decimal
    weight: int = 3
    by_weight: bool = False

    @property
    def unit_price(self) -> Decimal:
        return (self.shelf_price / (1 + self.rate)).quantize(CENT, ROUND_HALF_UP)

    @property
    def unit(self) -> str:
        return "KGM" if self.by_weight else "H87"


def _p(code: str, description: str, rate: Decimal, shelf: str, **kw) -> Product:
    return Product(code, description, rate, Decimal(shelf), **kw)


# Basic food and medicine are IVA 0 % (Ley de Régimen Tributario Interno, art. 55); the rest 15 %.
PRODUCTS: tuple[Product, ...] = (
    _p("ARR2KG", "ARROZ FLOR 2 KG", IVA_0, "2.95", weight=6),
    _p("LECHE1L", "LECHE ENTERA FUNDA 1 L", IVA_0, "1.05", weight=7),
    _p("HUEVO30", "HUEVOS CUBETA 30 UNIDADES", IVA_0, "4.50", weight=4),
    _p("PAN6", "PAN DE YEMA 6 UNIDADES", IVA_0, "1.20", weight=5),
    _p("AZUC2KG", "AZUCAR BLANCA 2 KG", IVA_0, "2.40", weight=3),
    _p("ACEI1L", "ACEITE DE PALMA 1 L", IVA_0, "2.85", weight=3),
    _p("PAPA", "PAPA CHOLA", IVA_0, "0.90", weight=4, by_weight=True),
    _p("PLAT", "PLATANO VERDE", IVA_0, "0.70", weight=4, by_weight=True),
    _p("TOMATE", "TOMATE RIÑON", IVA_0, "1.40", weight=4, by_weight=True),
    _p("POLLO", "POLLO ENTERO", IVA_0, "3.10", weight=3, by_weight=True),
    _p("QUESO", "QUESO FRESCO 500 G", IVA_0, "2.75", weight=3),
    _p("ATUN", "ATUN EN ACEITE 180 G", IVA_0, "1.65", weight=3),
    _p("PARAC", "PARACETAMOL 500 MG 10 TABLETAS", IVA_0, "1.80", weight=1),
    _p("COLA3L", "BEBIDA GASEOSA COLA 3 L", IVA_15, "2.50", weight=5),
    _p("AGUA1L", "AGUA SIN GAS 1 L", IVA_15, "0.75", weight=5),
    _p("JUGO1L", "JUGO DE NARANJA 1 L", IVA_15, "1.95", weight=3),
    _p("GALLE", "GALLETAS DE CHOCOLATE 6 PAQUETES", IVA_15, "1.60", weight=3),
    _p("CHOC", "CHOCOLATE EN BARRA 100 G", IVA_15, "2.30", weight=2),
    _p("CAFE", "CAFE SOLUBLE 170 G", IVA_15, "6.90", weight=2),
    _p("DETER", "DETERGENTE EN POLVO 1 KG", IVA_15, "3.45", weight=3),
    _p("CLORO", "CLORO 1 L", IVA_15, "0.95", weight=2),
    _p("PAPEL", "PAPEL HIGIENICO 4 ROLLOS", IVA_15, "2.20", weight=4),
    _p("JABON", "JABON DE TOCADOR 3 UNIDADES", IVA_15, "2.65", weight=3),
    _p("SHAMP", "SHAMPOO 400 ML", IVA_15, "4.80", weight=2),
    _p("PASTA", "PASTA DENTAL 100 ML", IVA_15, "2.15", weight=2),
    _p("PILAS", "PILAS ALCALINAS AA 4 UNIDADES", IVA_15, "5.75", weight=1),
)
SHOP_TICKETS = 200
# The provider's size: every bill is a factura, so ACCOUNTS × 6 facturas go through the whole
# SRI road at `flask demo load` (≈ 85 ms each on SQLite: 360 take ≈ 30 s).
ACCOUNTS, LINES = 20, 30
SHOP_DAYS = 21  # "the last weeks"
SHOP_SEED = 20_260_593
OPENING, OPEN_SECONDS = time(8, 0), 13 * 3600  # 08:00 to 21:00


@dataclass(frozen=True)
class EcuadorDemo:
    created: bool
    services: Issuer
    shop: Issuer
    accounts: int
    lines: int
    tickets: int


def _issuer(session: Session, slug: str) -> Issuer | None:
    return session.scalar(select(Issuer).where(Issuer.slug == slug))


def new_p12(ruc: str, legal_name: str, now: datetime) -> tuple[bytes, str]:
    """A test .p12 for `ruc` (the test authority's, named as such) and its password."""
    password = secrets.token_urlsafe(18)
    return make_test_p12(ruc, legal_name, password, now=now), password


def load_ecuador_demo(
    session: Session,
    fernet: Fernet,
    now: datetime | None = None,
    *,
    accounts: int = ACCOUNTS,
    lines: int = LINES,
    tickets: int = SHOP_TICKETS,
    holder_emails: bool = True,
    p12s: dict[str, tuple[bytes, str]] | None = None,
) -> EcuadorDemo:
    """Create the Ecuadorian telecom provider and shop unless they exist; commits. Idempotent:
    a second call only counts. `lines` ≥ `accounts` (every account has a mobile line; the rest
    go to accounts at random). `holder_emails`: the holders with a RUC have an address their
    invoices are emailed to. `p12s`: the test .p12 and password of each RUC (`new_p12`), made
    here when not given (tests make them once)."""
    telecom, shop = _issuer(session, SERVICES_SLUG), _issuer(session, SHOP_SLUG)
    if telecom is not None and shop is not None:
        return EcuadorDemo(False, telecom, shop, *_counts(session, telecom, shop))
    now = now or datetime.now(UTC)
    created_accounts = created_lines = created_tickets = 0
    if telecom is None:
        p12 = (p12s or {}).get(SERVICES_RUC) or new_p12(SERVICES_RUC, SERVICES_LEGAL_NAME, now)
        telecom, created_accounts, created_lines = _load_telecom(
            session, fernet, now, accounts, lines, holder_emails, p12
        )
    if shop is None:
        p12 = (p12s or {}).get(SHOP_RUC) or new_p12(SHOP_RUC, SHOP_LEGAL_NAME, now)
        shop, created_tickets = _load_shop(session, fernet, now, tickets, p12)
    session.commit()
    return EcuadorDemo(True, telecom, shop, created_accounts, created_lines, created_tickets)


def _load_telecom(
    session: Session,
    fernet: Fernet,
    now: datetime,
    accounts: int,
    lines: int,
    holder_emails: bool,
    p12: tuple[bytes, str],
) -> tuple[Issuer, int, int]:
    rng = random.Random(20260593)  # noqa: S311 (demo data, not secrets)
    issuer = Issuer(
        slug=SERVICES_SLUG,
        kind="services",
        country="EC",
        rfc=SERVICES_RUC,
        legal_name=SERVICES_LEGAL_NAME,
        trade_name=SERVICES_TRADE_NAME,
        head_office_address=SERVICES_ADDRESS,
        keeps_accounts=True,
        regimen_fiscal="",
        cp="",
        next_folio=1,
        window_policy="days_after:30",
        formas_pago=SERVICES_FORMAS_PAGO,
        brand_color="#00695c",
    )
    store_p12(issuer, *p12, fernet, now=now)
    issuer.branches = [
        Branch(
            code=services.BILLING_BRANCH,
            name="Facturación de servicios",
            cp="",
            address=SERVICES_ADDRESS,
            active=True,
            estab="001",
            pto_emi="001",
        )
    ]
    session.add(issuer)
    session.flush()
    types, by_type = services.add_catalog(
        session,
        issuer,
        now,
        TERMS.format(version=TERMS_VERSION),
        TERMS_VERSION,
        SERVICE_TYPES,
        PLANS,
        tax_rate=IVA_15,
    )
    account_rows = []
    for i in range(accounts):
        given, surnames = rng.choice(GIVEN), f"{rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"
        name, holder_id = f"{surnames} {given}".upper(), holder_cedula(i)
        row = {
            "issuer_id": issuer.id,
            "number": f"{200000 + i}",
            "holder_name": name,
            "holder_id": holder_id,
            "email": None,
            "contact_mobile": mobile_number(i),
            "billing_day": (1, 8, 15, 22)[i % 4],
            "created_at": now,
            "updated_at": now,
        }
        # One holder in five gave a RUC for their invoices: their own (persona natural: the
        # cédula + 001) or their company's. The others' facturas name their cédula.
        if i % 5 == 0:
            if i % 10 == 0:
                ruc, razon_social = f"{holder_id}001", name
            else:
                ruc, razon_social = COMPANIES[(i // 10) % len(COMPANIES)]
            row |= {
                "fiscal_rfc": ruc,
                "fiscal_name": razon_social,
                "email": f"cliente.ec{i}@example.com" if holder_emails else None,
            }
        account_rows.append(row)
    account_ids = session.scalars(
        insert(ServiceAccount).returning(ServiceAccount.id, sort_by_parameter_order=True),
        account_rows,
    ).all()

    line_rows = []
    for n in range(max(lines, accounts)):
        account_id = account_ids[n] if n < accounts else rng.choice(account_ids)
        type_code = "MOVIL" if n < accounts or rng.random() < 0.6 else rng.choice(("HOGAR", "TV"))
        phone = types[type_code].line_kind is LineKind.PHONE
        line_rows.append(
            {
                "issuer_id": issuer.id,
                "service_account_id": account_id,
                "service_type_id": types[type_code].id,
                "plan_id": rng.choice(by_type[type_code]).id,
                # The first `accounts` mobiles are the accounts' contact mobiles.
                "number": mobile_number(n) if phone else contract_number(n),
                "created_at": now,
            }
        )
    session.execute(insert(ServiceLine), line_rows)
    session.flush()
    return issuer, len(account_rows), len(line_rows)


# --- The shop's tickets -----------------------------------------------------------------------


@dataclass
class DemoTicket:
    branch: int  # index in SHOP_BRANCHES
    order_number: str
    ticket_number: str
    sold_at: datetime
    lines: list[tuple[Product, Decimal]]

    def cfdi_lines(self) -> list[Line]:
        return [
            Line(
                description=product.description,
                clave_prod_serv=product.code,
                clave_unidad=product.unit,
                quantity=quantity,
                unit_price=product.unit_price,
                objeto_imp="02",
                tax_factor="Tasa",
                tax_rate=product.rate,
            )
            for product, quantity in self.lines
        ]

    @property
    def total(self) -> Decimal:
        return ticket_total(self.cfdi_lines())


def _sale_times(count: int, now: datetime, rng: random.Random) -> list[datetime]:
    """`count` sale times in the SHOP_DAYS before `now` (Ecuador's opening hours, half of
    them in the current month when it has begun), oldest first."""
    local_now = now.astimezone(ECUADOR)
    today = local_now.date()
    times = []
    for _ in range(count):
        span = today.day if rng.random() < 0.5 else SHOP_DAYS
        day: date = today - timedelta(days=int(rng.random() * min(span, SHOP_DAYS)))
        sold = datetime.combine(day, OPENING, ECUADOR) + timedelta(
            seconds=int(rng.random() * OPEN_SECONDS)
        )
        if sold >= local_now:  # later today: into the part of today already gone
            midnight = datetime.combine(today, time(0), ECUADOR)
            sold = midnight + (local_now - midnight) * rng.random()
        times.append(sold.astimezone(UTC).replace(microsecond=0))
    return sorted(times)


def generate_tickets(now: datetime, count: int = SHOP_TICKETS) -> list[DemoTicket]:
    """`count` tickets of the last weeks. Numbers, orders, products and totals depend on the
    seed only (ticket numbers rise with the sale time, per branch): the same on every machine;
    the dates follow `now`."""
    content = random.Random(SHOP_SEED)  # noqa: S311 (demo data)
    dates = random.Random(SHOP_SEED + 1)  # noqa: S311
    weights = [p.weight for p in PRODUCTS]
    numbers = [3_000_000 + 1000 * b for b in range(len(SHOP_BRANCHES))]
    tickets = []
    for sold_at in _sale_times(count, now, dates):
        branch = content.randrange(len(SHOP_BRANCHES))
        numbers[branch] += content.randint(1, 9)
        size = content.choices((1, 2, 3, 4, 5), (25, 25, 22, 16, 12))[0]
        products: list[Product] = []
        while len(products) < size:
            product = content.choices(PRODUCTS, weights)[0]
            if product not in products:
                products.append(product)
        lines = [
            (
                p,
                Decimal(content.randint(250, 2500)) / 1000
                if p.by_weight
                else Decimal(content.choices((1, 2, 3), (6, 3, 1))[0]),
            )
            for p in products
        ]
        order = str(content.randrange(100000, 1000000))
        tickets.append(DemoTicket(branch, order, str(numbers[branch]), sold_at, lines))
    return tickets


def _load_shop(
    session: Session, fernet: Fernet, now: datetime, count: int, p12: tuple[bytes, str]
) -> tuple[Issuer, int]:
    issuer = Issuer(
        slug=SHOP_SLUG,
        kind="retail",
        country="EC",
        rfc=SHOP_RUC,
        legal_name=SHOP_LEGAL_NAME,
        trade_name=SHOP_TRADE_NAME,
        head_office_address=SHOP_ADDRESS,
        keeps_accounts=False,
        rimpe=catalogs.RIMPE_EMPRENDEDOR,
        regimen_fiscal="",
        cp="",
        next_folio=1,
        formas_pago=SHOP_FORMAS_PAGO,
        brand_color="#b71c1c",
    )
    store_p12(issuer, *p12, fernet, now=now)
    branches = [
        Branch(
            code=b.code,
            name=b.name,
            cp="",
            address=b.address,
            active=True,
            estab=b.estab,
            pto_emi="001",
        )
        for b in SHOP_BRANCHES
    ]
    issuer.branches = branches
    session.add(issuer)
    session.flush()
    tickets = generate_tickets(now, count)
    ids = session.scalars(
        insert(Ticket).returning(Ticket.id, sort_by_parameter_order=True),
        [
            {
                "branch_id": branches[t.branch].id,
                "order_number": t.order_number,
                "ticket_number": t.ticket_number,
                "sold_at": t.sold_at,
                "total": t.total,
                "currency": "USD",
                "status": TicketStatus.OPEN,
            }
            for t in tickets
        ],
    ).all()
    session.execute(
        insert(TicketLine),
        [
            {
                "ticket_id": ticket_id,
                "position": position,
                "description": line.description,
                "clave_prod_serv": line.clave_prod_serv,
                "clave_unidad": line.clave_unidad,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "objeto_imp": line.objeto_imp,
                "tax_factor": line.tax_factor,
                "tax_rate": line.tax_rate,
            }
            for ticket_id, ticket in zip(ids, tickets, strict=True)
            for position, line in enumerate(ticket.cfdi_lines(), start=1)
        ],
    )
    return issuer, len(tickets)


# --- History -----------------------------------------------------------------------------------

SRI_PAYMENT_FORMS = ("20", "19", "16", "01")  # transfer, credit card, debit card, cash


def load_ecuador_history(
    session: Session,
    stamping: Stamping,
    now: datetime | None = None,
    *,
    months: int = 6,
    progress=None,
) -> int:
    """The provider's last `months` periods billed through the billing run, with payments in
    between (services.load_history); idempotent. Raises webapp.billing.run.BillingError
    ("unsupported_country") while the billing run has no SRI document."""
    return services.load_history(
        session,
        stamping,
        now,
        months=months,
        progress=progress,
        slug=SERVICES_SLUG,
        payment_forms=SRI_PAYMENT_FORMS,
    )


def _counts(session: Session, telecom: Issuer, shop: Issuer) -> tuple[int, int, int]:
    accounts, lines = services._counts(session, telecom)
    tickets = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .join(Branch)
        .where(Branch.issuer_id == shop.id, Ticket.status == TicketStatus.OPEN)
    )
    return accounts, lines, tickets or 0
