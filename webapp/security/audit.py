"""Recording security events, and the notices they trigger."""

from __future__ import annotations

import secrets

from flask import request
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select

from webapp.extensions import db
from webapp.models import Account, AuditEvent, StaffMember

DEVICE_COOKIE = "dispositivo"

LABELS = {
    "registered": _l("Registro iniciado"),
    "verified": _l("Correo verificado y contraseña elegida"),
    "signin": _l("Inicio de sesión"),
    "signin_failed": _l("Intento de inicio de sesión fallido"),
    "locked": _l("Cuenta bloqueada"),
    "unlocked": _l("Cuenta desbloqueada"),
    "reset_requested": _l("Recuperación de contraseña solicitada"),
    "reset_used": _l("Contraseña restablecida con el enlace"),
    "temporary_password": _l("Contraseña temporal enviada"),
    "password_changed": _l("Contraseña cambiada"),
    "signed_out_everywhere": _l("Sesiones cerradas en todos los dispositivos"),
    "email_changed": _l("Correo de la cuenta cambiado"),
}


def device_id() -> str:
    """This browser's device id (from its long-lived cookie), or a new one to set."""
    value = request.cookies.get(DEVICE_COOKIE, "")
    return value if value.isalnum() and len(value) == 32 else secrets.token_hex(16)


def record(
    event: str, account: Account | None, device: str = "", staff: StaffMember | None = None
) -> AuditEvent:
    """Add an event to the session (committed with the change it records): of a customer's
    `account`, or of a back-office `staff` member."""
    entry = AuditEvent(
        account_id=account.id if account is not None else None,
        staff_id=staff.id if staff is not None else None,
        event=event,
        ip=(request.remote_addr or "")[:45],
        user_agent=(request.user_agent.string or "")[:255],
        device=device,
    )
    db.session.add(entry)
    return entry


def record_for(event: str, subject: Account | StaffMember | None, device: str = "") -> None:
    """Record an event of whoever signs in: an account, a staff member, or nobody known (a
    failed sign-in with an unknown identifier is recorded too)."""
    if isinstance(subject, StaffMember):
        record(event, None, device, staff=subject)
    else:
        record(event, subject, device)


def known_device(account: Account, device: str) -> bool:
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    AuditEvent.account_id == account.id,
                    AuditEvent.event == "signin",
                    AuditEvent.device == device,
                )
            )
        )
    )


def recent(account: Account, limit: int = 20) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.account_id == account.id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
