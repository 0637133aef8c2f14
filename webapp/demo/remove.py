"""Taking the demo out of a database that is going to production (`flask demo remove`): the
demo issuers (known by slug AND tax id, so a real issuer that happens to pick one of the
slugs is never touched), every row that hangs off them (branches, tickets, invoices and their
files, bills, service accounts and lines, the customers' links to those lines, kiosks, API
keys, staff and their sessions, the platform's ledger and slips...), and the people whose
password the demo publishes: the demo staff (the operator too) and the demo customer.

Which rows hang off an issuer is read from the models' foreign keys, so a table added later
is followed too: a row is removed when a foreign key that is not ON DELETE SET NULL points at
a removed row; one that is SET NULL is set to NULL. Nothing else is touched: another issuer's
rows never point at a demo issuer's. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, Table, delete, false, or_, select, update
from sqlalchemy.orm import Session

from webapp.demo import data, ecuador, invoices, platform, services
from webapp.demo import staff as demo_staff
from webapp.models import Account, Issuer, StaffMember
from webapp.models.base import Base

# (slug, tax id) of every issuer the demo commands create.
DEMO_ISSUERS = (
    (data.SLUG, data.RFC),
    (services.SLUG, services.RFC),
    (ecuador.SERVICES_SLUG, ecuador.SERVICES_RUC),
    (ecuador.SHOP_SLUG, ecuador.SHOP_RUC),
    (platform.PLATFORM_SLUG, platform.PLATFORM_RFC),  # the operator's demo issuer
    *((slug, rfc) for slug, rfc, _name, _cp, _codes in invoices.OTHER_ISSUERS),
)
DEMO_STAFF = (
    demo_staff.OPERATOR_EMAIL,
    demo_staff.ADMIN_EMAIL,
    demo_staff.BRANCH_EMAIL,
    demo_staff.SERVICES_ADMIN_EMAIL,
    demo_staff.ECUADOR_SERVICES_ADMIN_EMAIL,
    demo_staff.ECUADOR_SHOP_ADMIN_EMAIL,
)
DEMO_ACCOUNTS = (invoices.CUSTOMER_EMAIL,)


@dataclass
class Removal:
    issuers: list[str] = field(default_factory=list)  # slugs
    staff: list[str] = field(default_factory=list)  # emails
    accounts: list[str] = field(default_factory=list)  # emails
    rows: dict[str, int] = field(default_factory=dict)  # table: rows removed

    @property
    def operator_removed(self) -> bool:
        return demo_staff.OPERATOR_EMAIL in self.staff

    @property
    def empty(self) -> bool:
        return not (self.issuers or self.staff or self.accounts)


def find(session: Session) -> Removal:
    """What `remove` would take out (nothing is changed)."""
    found = Removal()
    wanted = or_(false(), *((Issuer.slug == s) & (Issuer.rfc == r) for s, r in DEMO_ISSUERS))
    found.issuers = list(session.scalars(select(Issuer.slug).where(wanted).order_by(Issuer.slug)))
    found.staff = list(
        session.scalars(
            select(StaffMember.email)
            .join(Issuer, Issuer.id == StaffMember.issuer_id, isouter=True)
            .where(or_(StaffMember.email.in_(DEMO_STAFF), wanted))
            .order_by(StaffMember.email)
        )
    )
    found.accounts = list(
        session.scalars(select(Account.email).where(Account.email.in_(DEMO_ACCOUNTS)))
    )
    return found


def _id_column(table: Table):
    """The table's own `id` key column, or None (an association table, another key)."""
    keys = list(table.primary_key.columns)
    return keys[0] if len(keys) == 1 and keys[0].name == "id" else None


def _doomed(session: Session) -> dict[str, Select]:
    """{table name: select of the ids of its rows to remove} for tables with an `id` key,
    following foreign keys from the demo issuers, staff and accounts to a fixed point."""
    wanted = or_(false(), *((Issuer.slug == s) & (Issuer.rfc == r) for s, r in DEMO_ISSUERS))
    seeds = {
        "issuer": [select(Issuer.id).where(wanted)],
        "staff_member": [select(StaffMember.id).where(StaffMember.email.in_(DEMO_STAFF))],
        "account": [select(Account.id).where(Account.email.in_(DEMO_ACCOUNTS))],
    }
    # Materialise ids table by table (parents first), so each set is read once.
    ids: dict[str, set[int]] = {}
    tables = Base.metadata.sorted_tables
    changed = True
    while changed:
        changed = False
        for table in tables:
            column = _id_column(table)
            if column is None:
                continue
            found: set[int] = set(ids.get(table.name, set()))
            for query in seeds.get(table.name, []):
                found.update(session.scalars(query))
            for fk in table.foreign_keys:
                parent = fk.column.table.name
                if fk.ondelete == "SET NULL" or not ids.get(parent):
                    continue
                found.update(
                    session.scalars(select(column).where(fk.parent.in_(sorted(ids[parent]))))
                )
            if found != ids.get(table.name, set()):
                ids[table.name] = found
                changed = True
    return ids


def _chunks(values: set[int], size: int = 500):
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def remove(session: Session) -> Removal:
    """Remove the demo (the caller commits); what was removed."""
    removal = find(session)
    if removal.empty:
        return removal
    ids = _doomed(session)
    tables = Base.metadata.sorted_tables
    # First every SET NULL link to a removed row (in rows that stay, or that go later).
    for table in tables:
        for fk in table.foreign_keys:
            parent = fk.column.table.name
            if fk.ondelete == "SET NULL" and ids.get(parent):
                for chunk in _chunks(ids[parent]):
                    session.execute(
                        update(table).where(fk.parent.in_(chunk)).values({fk.parent.name: None})
                    )
    # Then children before parents: rows without an id of their own by their links.
    for table in reversed(tables):
        column = _id_column(table)
        count = 0
        if column is not None:
            for chunk in _chunks(ids.get(table.name, set())):
                count += session.execute(delete(table).where(column.in_(chunk))).rowcount or 0
        else:
            for fk in table.foreign_keys:
                parent = fk.column.table.name
                if fk.ondelete == "SET NULL" or not ids.get(parent):
                    continue
                for chunk in _chunks(ids[parent]):
                    count += (
                        session.execute(delete(table).where(fk.parent.in_(chunk))).rowcount or 0
                    )
        if count:
            removal.rows[table.name] = count
    session.expire_all()
    return removal
