"""The back office's menu: each entry shows when its view exists, the staff's role may open
it and it fits the kind of issuer acted on (a retail issuer has no service accounts; a
services issuer sells no tickets at branches)."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from webapp.models import Issuer, StaffMember, StaffRole

ADMIN, BRANCH = StaffRole.ISSUER_ADMIN, StaffRole.BRANCH_STAFF

ENTRIES = [
    ("admin.onboarding_checklist", _l("Alta"), (ADMIN,)),
    ("admin.home", _l("Resumen"), (ADMIN, BRANCH)),
    ("admin.invoices", _l("Facturas"), (ADMIN, BRANCH)),
    ("admin.global_invoices", _l("Factura global"), (ADMIN,)),
    ("admin.imports", _l("Tickets"), (ADMIN, BRANCH)),
    ("admin.service_accounts", _l("Cuentas de servicio"), (ADMIN, BRANCH)),
    ("admin.billing_runs", _l("Facturación mensual"), (ADMIN,)),
    ("admin.branches", _l("Sucursales"), (ADMIN,)),
    ("admin.api_keys", _l("API"), (ADMIN,)),
    ("admin.people", _l("Personal"), (ADMIN,)),
    ("admin.settings", _l("Emisor"), (ADMIN,)),
    ("admin.issuers", _l("Emisores"), ()),
]


# Entries only for one kind of issuer; the others show for both.
ONLY_FOR = {
    "admin.service_accounts": "services",
    "admin.billing_runs": "services",
    "admin.imports": "retail",
    "admin.branches": "retail",
}

# Entries only while the issuer's onboarding checklist is open.
ONLY_PENDING = {"admin.onboarding_checklist"}


def entries(member: StaffMember, issuer: Issuer | None = None) -> list[tuple[str, str]]:
    views = current_app.view_functions
    kind = issuer.kind if issuer is not None else None
    return [
        (endpoint, label)
        for endpoint, label, roles in ENTRIES
        if endpoint in views
        and (member.role is StaffRole.OPERATOR or member.role in roles)
        and (kind is None or ONLY_FOR.get(endpoint, kind) == kind)
        and (endpoint not in ONLY_PENDING or (issuer is not None and issuer.onboarding_pending))
    ]
