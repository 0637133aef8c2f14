"""Onboarding a real merchant (issue #17): the operator creates the issuer (pending, metered,
with a licence), its first admin completes a checklist computed from the issuer's data, and
publishing it offers the issuer to customers.

Flask-free: the operator console (webapp.operator.onboarding), `flask issuers create` and the
admin's checklist (webapp.admin.onboarding) call it. Checks answer {field: problem code}; the
callers word them (Spanish on the web, English on the command line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from webapp.fiscal import catalogs
from webapp.fiscal.limits import LEGAL_NAME_MAX
from webapp.fiscal.matrix import NON_RECEPTOR_REGIMENES, regimenes_for
from webapp.fiscal.receptor import check_cp, check_nombre, normalize_nombre
from webapp.fiscal.rfc import check_rfc, person_type
from webapp.models import AuditEvent, Branch, Issuer, StaffMember, StaffRole
from webapp.sri import catalogs as sri_catalogs

COUNTRIES = ("MX", "EC")
KINDS = ("retail", "services")
LICENCE_DAYS = 365  # a new issuer's licence, unless the operator says otherwise
SLUG_MAX = 40
# Lowercase letters, digits and inner hyphens: it is a path segment of every customer URL.
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# The audit event that records "invoicing policy reviewed" (its staff member's issuer).
POLICY_CONFIRMED = "policy_confirmed"
BILLING_BRANCH = "FACTURACION"  # webapp.billing.run.BILLING_BRANCH (billing is above us)

# Problem codes (beside webapp.fiscal.problems.Problem's values for the MX fiscal fields).
TAKEN = "taken"
EMPTY = "empty"
FORMAT = "format"
TOO_LONG = "too_long"
UNKNOWN = "unknown"
WRONG_PERSON_TYPE = "wrong_person_type"


@dataclass(frozen=True)
class NewIssuer:
    """What the operator types to create an issuer. `tax_id` is the RFC (MX) or the RUC (EC);
    `regimen` and `cp` are Mexican only."""

    tax_id: str
    legal_name: str
    slug: str
    regimen: str = ""
    cp: str = ""
    country: str = "MX"
    kind: str = "retail"
    licence_expires_at: datetime | None = None


def normalize_slug(value: str | None) -> str:
    return (value or "").strip().lower()


def issuer_regimenes(rfc: str) -> list[str]:
    """The régimenes an issuer with `rfc` may have (receptor ones plus emisor-only ones)."""
    person = person_type(rfc)
    extra = [code for code, kind in NON_RECEPTOR_REGIMENES.items() if kind is person]
    return sorted([*regimenes_for(person), *extra])


def check(session: Session, new: NewIssuer) -> dict[str, str]:
    """{field: problem code} for `new` (fields: country, kind, rfc, legal_name, regimen, cp,
    slug); {} when it can be created."""
    problems: dict[str, str] = {}
    if new.country not in COUNTRIES:
        problems["country"] = UNKNOWN
        return problems
    if new.kind not in KINDS:
        problems["kind"] = UNKNOWN
    tax_id = normalized_tax_id(new)
    if new.country == "MX":
        rfc, problem = check_rfc(new.tax_id)
        if problem is not None:
            problems["rfc"] = problem.value
        person = None if problem is not None else person_type(rfc)
        # Typed in any case: stored in capitals, as the Constancia prints it.
        name = normalize_nombre(new.legal_name)
        if (name_problem := check_nombre(name, person, LEGAL_NAME_MAX)) is not None:
            problems["legal_name"] = name_problem.value
        regimen = (new.regimen or "").strip()
        if not regimen:
            problems["regimen"] = EMPTY
        elif regimen not in catalogs.REGIMENES:
            problems["regimen"] = UNKNOWN
        elif person is not None and regimen not in issuer_regimenes(rfc):
            problems["regimen"] = WRONG_PERSON_TYPE
        if (cp_problem := check_cp(new.cp)) is not None:
            problems["cp"] = cp_problem.value
    else:
        if not (new.tax_id or "").strip():
            problems["rfc"] = EMPTY
        else:
            try:
                sri_catalogs.validate_identification(sri_catalogs.RUC, new.tax_id)
            except sri_catalogs.InvalidIdentification:
                problems["rfc"] = FORMAT
        name = " ".join((new.legal_name or "").split())
        if not name:
            problems["legal_name"] = EMPTY
        elif len(name) > LEGAL_NAME_MAX:
            problems["legal_name"] = TOO_LONG
        elif "|" in name:
            problems["legal_name"] = FORMAT
    if "rfc" not in problems and session.scalar(select(exists().where(Issuer.rfc == tax_id))):
        problems["rfc"] = TAKEN
    slug = normalize_slug(new.slug)
    if not slug:
        problems["slug"] = EMPTY
    elif len(slug) > SLUG_MAX:
        problems["slug"] = TOO_LONG
    elif not SLUG.fullmatch(slug):
        problems["slug"] = FORMAT
    elif session.scalar(select(exists().where(Issuer.slug == slug))):
        problems["slug"] = TAKEN
    return problems


def normalized_tax_id(new: NewIssuer) -> str:
    if new.country == "EC":
        value = (new.tax_id or "").strip()
        try:
            return sri_catalogs.validate_identification(sri_catalogs.RUC, value)
        except sri_catalogs.InvalidIdentification:
            return value
    return check_rfc(new.tax_id)[0]


def create(session: Session, new: NewIssuer, now: datetime) -> Issuer:
    """The issuer of `new` (already checked), pending its checklist, metered from zero
    credits, its licence until `new.licence_expires_at` (a year from `now` by default);
    flushed, the caller commits (a race on the slug or RFC raises IntegrityError)."""
    ec = new.country == "EC"
    issuer = Issuer(
        slug=normalize_slug(new.slug),
        kind=new.kind,
        country=new.country,
        rfc=normalized_tax_id(new),
        legal_name=" ".join(new.legal_name.split()) if ec else normalize_nombre(new.legal_name),
        regimen_fiscal="" if ec else new.regimen.strip(),
        cp="" if ec else new.cp.strip(),
        next_folio=1,
        onboarding_pending=True,
        stamp_credits=0,
        licence_expires_at=new.licence_expires_at or now + timedelta(days=LICENCE_DAYS),
    )
    if new.kind == "services":  # its bills are sales of its billing branch
        issuer.branches = [
            Branch(
                code=BILLING_BRANCH,
                name="Facturación",
                cp=issuer.cp,
                address="",
                estab="001" if ec else None,
                pto_emi="001" if ec else None,
            )
        ]
    session.add(issuer)
    session.flush()
    return issuer


# --- The checklist ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One item of the checklist: `key` names it (the web layer words it and links it to
    its settings page), `done` ticks it."""

    key: str
    done: bool


def policy_confirmed(session: Session, issuer: Issuer) -> bool:
    """An admin of `issuer` confirmed its invoicing policy (an audit event of theirs)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    AuditEvent.event == POLICY_CONFIRMED,
                    AuditEvent.staff_id == StaffMember.id,
                    StaffMember.issuer_id == issuer.id,
                )
            )
        )
    )


def _pac_ready(issuer: Issuer) -> bool:
    """The deployment's PAC serves an issuer without its own; an own real PAC needs its
    credentials (the sandbox needs none)."""
    if issuer.pac_provider in (None, "", "sandbox"):
        return True
    return issuer.pac_credentials_encrypted is not None


def _branch_ready(session: Session, issuer: Issuer) -> bool:
    query = select(Branch.id).where(Branch.issuer_id == issuer.id, Branch.active.is_(True))
    if issuer.kind == "services":  # its bills are sales of the billing branch
        return session.scalar(query.where(Branch.code == BILLING_BRANCH).limit(1)) is not None
    return session.scalar(query.limit(1)) is not None


def checklist(session: Session, issuer: Issuer) -> list[Item]:
    """Fiscal data, CSD (.p12 in Ecuador), PAC (Mexico), first branch (retail) or billing
    branch (services), invoicing policy reviewed: each ticked from the data."""
    ec = issuer.country == "EC"
    if ec:
        fiscal = bool(issuer.rfc and issuer.legal_name and issuer.head_office_address)
    else:
        fiscal = bool(issuer.rfc and issuer.legal_name and issuer.regimen_fiscal and issuer.cp)
    items = [Item("fiscal", fiscal)]
    if ec:
        items.append(Item("p12", issuer.p12_password_encrypted is not None))
    else:
        items.append(
            Item(
                "csd",
                issuer.csd_certificate is not None and issuer.csd_key_encrypted is not None,
            )
        )
        items.append(Item("pac", _pac_ready(issuer)))
    items.append(
        Item(
            "billing_branch" if issuer.kind == "services" else "branch",
            _branch_ready(session, issuer),
        )
    )
    items.append(Item("policy", policy_confirmed(session, issuer)))
    return items


def complete(session: Session, issuer: Issuer) -> bool:
    return all(item.done for item in checklist(session, issuer))


class NotComplete(ValueError):
    """Publishing an issuer whose checklist is not complete."""


def publish(session: Session, issuer: Issuer) -> None:
    """Offer `issuer` to customers (the caller commits); NotComplete while an item is open."""
    if not complete(session, issuer):
        raise NotComplete(issuer.slug)
    issuer.onboarding_pending = False


def offered(issuer: Issuer | None) -> bool:
    """Whether customers may see `issuer` (its onboarding is done)."""
    return issuer is not None and not issuer.onboarding_pending


def first_admin(session: Session, issuer: Issuer) -> StaffMember | None:
    return session.scalar(
        select(StaffMember)
        .where(StaffMember.issuer_id == issuer.id, StaffMember.role == StaffRole.ISSUER_ADMIN)
        .order_by(StaffMember.id)
        .limit(1)
    )
