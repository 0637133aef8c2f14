"""The demo telecom provider (seed 002): a services issuer with its service types, plans,
terms, service accounts and lines. Deterministic (a seeded random), idempotent.

`load_history` then adds the past months: the billing run (webapp.billing.run) bills each
period, and most holders pay what they owe before the next corte.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from webapp.billing.run import local_today, previous_period, run
from webapp.cfdi.testcsd import make_test_csd
from webapp.csd import store_csd
from webapp.models import (
    Branch,
    Issuer,
    LineKind,
    Payment,
    Plan,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    ServiceTerms,
    ServiceType,
)
from webapp.services.stamping import Stamping

SLUG = "telcel-demo"
# A SAT test RFC (persona moral) other than the retail demo's.
RFC = "IIA040805DZ4"
LEGAL_NAME = "INDISTRIA ILUMINADORA DE ALMACENES"
REGIMEN_FISCAL = "601"
CP = "62661"
SERIE = "T"
BILLING_BRANCH = "FACTURACION"  # the branch whose tickets are the bills' sales
PAYMENT_FORMS = ("03", "04", "28", "01")  # SAT c_FormaPago of the holders' payments

TERMS_VERSION = "2026-01"
TERMS = """Términos y Condiciones del Servicio (versión {version})

1. Mi Línea Demo le permite consultar sus líneas, sus facturas y su estado de cuenta.
2. Para agregar una línea usted recibe un código por SMS en ese número: sólo el titular o
   quien tenga el teléfono puede agregarla.
3. Sus datos se tratan conforme al aviso de privacidad del proveedor.
"""

SERVICE_TYPES = (
    # code, name, line kind
    ("MOVIL", "Móvil", LineKind.PHONE),
    ("HOGAR", "Hogar (internet y teléfono fijo)", LineKind.CONTRACT),
    ("TV", "Televisión", LineKind.CONTRACT),
)
PLANS = (
    # code, type, name, monthly fee before tax (IVA 16 %)
    ("M-5GB", "MOVIL", "Plan Conecta 5 GB", Decimal("172.41")),
    ("M-15GB", "MOVIL", "Plan Conecta 15 GB", Decimal("301.72")),
    ("M-ILIM", "MOVIL", "Plan Conecta Ilimitado", Decimal("474.14")),
    ("H-50", "HOGAR", "Internet 50 Mbps + línea fija", Decimal("335.34")),
    ("H-200", "HOGAR", "Internet 200 Mbps + línea fija", Decimal("517.24")),
    ("TV-BAS", "TV", "TV Básica 80 canales", Decimal("211.21")),
)
# SAT test receptors (RFC, name, CP, régimen, uso): the holders who gave fiscal data.
FISCAL_HOLDERS = (
    ("XOJI740919U48", "INGRID XODAR JIMENEZ", "76028", "612", "G03"),
    ("CACX7605101P8", "XOCHILT CASAS CHAVEZ", "36257", "612", "G03"),
    ("FUNK671228PH6", "KARLA FUENTE NOLASCO", "01160", "612", "G03"),
)
GIVEN = ("María", "José", "Juan", "Guadalupe", "Luis", "Ana", "Carlos", "Rosa", "Miguel", "Laura")
SURNAMES = ("Hernández", "García", "Martínez", "López", "González", "Pérez", "Rodríguez", "Sánchez")


@dataclass(frozen=True)
class ServicesDemo:
    created: bool
    issuer: Issuer
    accounts: int
    lines: int


def services_issuer(session: Session) -> Issuer | None:
    return session.scalar(select(Issuer).where(Issuer.slug == SLUG))


def mobile_number(index: int) -> str:
    """The demo's index-th mobile number: +52 55 8000 0000 onwards (E.164)."""
    return f"+525580{index:06d}"


def contract_number(index: int) -> str:
    return f"C{index:08d}"


def new_csd(now: datetime) -> tuple[bytes, bytes, str]:
    """A test CSD for the provider: (certificate, key, password). Tests make one and reuse it."""
    password = secrets.token_urlsafe(18)
    certificate, key = make_test_csd(RFC, LEGAL_NAME, password, now=now)
    return certificate, key, password


def add_catalog(
    session: Session,
    issuer: Issuer,
    now: datetime,
    terms: str,
    terms_version: str,
    service_types,
    plans,
    tax_rate: Decimal | None = None,
) -> tuple[dict[str, ServiceType], dict[str, list[Plan]]]:
    """A demo provider's terms, service types ((code, name, line kind)) and plans ((code,
    type code, name, monthly fee)), at `tax_rate` (None: the column's default); flushed.
    Its service types and its plans, by type code."""
    session.add(
        ServiceTerms(issuer_id=issuer.id, version=terms_version, body=terms, published_at=now)
    )
    types = {}
    for position, (code, name, kind) in enumerate(service_types):
        types[code] = ServiceType(
            issuer_id=issuer.id, code=code, name=name, line_kind=kind, position=position
        )
        session.add(types[code])
    session.flush()
    rate = {} if tax_rate is None else {"tax_rate": tax_rate}
    made = [
        Plan(
            issuer_id=issuer.id,
            service_type_id=types[type_code].id,
            code=code,
            name=name,
            monthly_fee=fee,
            **rate,
        )
        for code, type_code, name, fee in plans
    ]
    session.add_all(made)
    session.flush()
    by_type: dict[str, list[Plan]] = {}
    for (_, type_code, _, _), plan in zip(plans, made, strict=True):
        by_type.setdefault(type_code, []).append(plan)
    return types, by_type


def load_services_demo(
    session: Session,
    fernet: Fernet,
    now: datetime | None = None,
    *,
    accounts: int = 500,
    lines: int = 800,
    csd: tuple[bytes, bytes, str] | None = None,
    holder_emails: bool = True,
) -> ServicesDemo:
    """Create the demo telecom provider unless it exists; commits. `lines` ≥ `accounts`:
    every account has one line, the rest go to accounts at random (families, home + mobile).
    `csd`: the provider's test CSD (`new_csd`), made here when not given. `holder_emails`:
    the holders with fiscal data have an address their invoices are emailed to."""
    if existing := services_issuer(session):
        return ServicesDemo(False, existing, *_counts(session, existing))
    now = now or datetime.now(UTC)
    rng = random.Random(20261206)  # noqa: S311 (demo data, not secrets)

    issuer = Issuer(
        slug=SLUG,
        kind="services",
        rfc=RFC,
        legal_name=LEGAL_NAME,
        regimen_fiscal=REGIMEN_FISCAL,
        cp=CP,
        serie=SERIE,
        next_folio=1,
        window_policy="days_after:30",
        global_periodicity="04",
        brand_color="#0b5394",
    )
    certificate, key, password = csd or new_csd(now)
    store_csd(issuer, certificate, key, password, fernet)
    issuer.branches = [
        Branch(code=BILLING_BRANCH, name="Facturación de servicios", cp=CP, address="", active=True)
    ]
    session.add(issuer)
    session.flush()
    types, by_type = add_catalog(
        session,
        issuer,
        now,
        TERMS.format(version=TERMS_VERSION),
        TERMS_VERSION,
        SERVICE_TYPES,
        PLANS,
    )

    account_rows = []
    for i in range(accounts):
        given, surname = rng.choice(GIVEN), f"{rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"
        row = {
            "issuer_id": issuer.id,
            "number": f"{100000 + i}",
            "holder_name": f"{given} {surname}".upper(),
            "holder_id": "XAXX010101000",
            "email": None,
            "contact_mobile": mobile_number(i),
            "billing_day": (1, 8, 15, 22)[i % 4],
            "created_at": now,
            "updated_at": now,
        }
        if i % 10 == 0:  # one holder in ten gave fiscal data: invoices; the rest receipts
            rfc, name, cp, regimen, uso = FISCAL_HOLDERS[(i // 10) % len(FISCAL_HOLDERS)]
            row |= {
                "holder_name": name,
                "holder_id": rfc,
                "fiscal_rfc": rfc,
                "fiscal_name": name,
                "fiscal_cp": cp,
                "fiscal_regimen": regimen,
                "fiscal_uso": uso,
                "email": f"cliente{i}@example.com" if holder_emails else None,
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
        plan = rng.choice(by_type[type_code])
        phone = types[type_code].line_kind is LineKind.PHONE
        line_rows.append(
            {
                "issuer_id": issuer.id,
                "service_account_id": account_id,
                "service_type_id": types[type_code].id,
                "plan_id": plan.id,
                # The first `accounts` mobiles are the accounts' contact mobiles.
                "number": mobile_number(n) if phone else contract_number(n),
                "created_at": now,
            }
        )
    session.execute(insert(ServiceLine), line_rows)
    session.commit()
    return ServicesDemo(True, issuer, len(account_rows), len(line_rows))


def past_periods(now: datetime, months: int) -> list[str]:
    """The `months` periods (YYYY-MM) before the current one in Mexico City, oldest first."""
    today = local_today(now)
    year, month = today.year, today.month
    periods = []
    for _ in range(months):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        periods.append(f"{year:04d}-{month:02d}")
    return periods[::-1]


def load_history(
    session: Session,
    stamping: Stamping,
    now: datetime | None = None,
    *,
    months: int = 6,
    progress: Callable[[str], None] | None = None,
    slug: str = SLUG,
    payment_forms: tuple[str, ...] = PAYMENT_FORMS,
) -> int:
    """Bill the demo provider's last `months` periods through the billing run, with the
    payments received in between (most holders pay the balance before the due date; some
    pay part, some nothing). Idempotent: periods already billed add nothing. Answers the
    number of bills of the provider. `slug`: which demo provider (the Ecuadorian one too,
    webapp.demo.ecuador), paid with `payment_forms` (its country's formas de pago)."""
    now = now or datetime.now(UTC)
    issuer = session.scalar(select(Issuer).where(Issuer.slug == slug))
    if issuer is None:
        return 0
    rng = random.Random(20261207)  # noqa: S311 (demo data)
    for period in past_periods(now, months):
        _pay_previous(session, issuer.id, period, rng, payment_forms)
        run(session, stamping, issuer, period, now)
        if progress:
            progress(period)
    return session.scalar(
        select(func.count()).select_from(ServiceBill).where(ServiceBill.issuer_id == issuer.id)
    )


def _pay_previous(
    session: Session,
    issuer_id: int,
    period: str,
    rng: random.Random,
    payment_forms: tuple[str, ...] = PAYMENT_FORMS,
) -> None:
    """Payments for the bills of the period before `period`, received before their due date
    (so before this period's corte); written once (external ids)."""
    before = previous_period(period)
    bills = session.execute(
        select(
            ServiceBill.id,
            ServiceBill.service_account_id,
            ServiceBill.balance_due,
            ServiceBill.cut_date,
        )
        .where(ServiceBill.issuer_id == issuer_id, ServiceBill.period == before)
        .order_by(ServiceBill.id)
    ).all()
    # Written already when any of them was paid (the first bill may be one nobody paid).
    if not bills or session.scalar(
        select(Payment.id)
        .where(
            Payment.issuer_id == issuer_id,
            Payment.external_id.in_([f"demo-{bill.id}" for bill in bills]),
        )
        .limit(1)
    ):
        return
    rows = []
    for bill_id, account_id, due, cut in bills:
        luck = rng.random()
        if due <= 0 or luck < 0.08:
            continue  # nothing owed, or not paid this month
        amount = due if luck > 0.15 else (due / 2).quantize(Decimal("0.01"))
        paid_on = cut + timedelta(days=rng.randint(1, 14))
        rows.append(
            {
                "issuer_id": issuer_id,
                "service_account_id": account_id,
                "external_id": f"demo-{bill_id}",
                "amount": amount,
                "received_at": datetime.combine(paid_on, time(12), tzinfo=UTC),
                "forma_pago": rng.choice(payment_forms),
                "reference": f"PAGO-{bill_id}",
                "created_at": datetime.now(UTC),
            }
        )
    if rows:
        session.execute(insert(Payment), rows)
    session.commit()


def _counts(session: Session, issuer: Issuer) -> tuple[int, int]:
    accounts = session.scalar(
        select(func.count())
        .select_from(ServiceAccount)
        .where(ServiceAccount.issuer_id == issuer.id)
    )
    lines = session.scalar(
        select(func.count()).select_from(ServiceLine).where(ServiceLine.issuer_id == issuer.id)
    )
    return accounts or 0, lines or 0
