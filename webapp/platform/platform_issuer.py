"""The operator's own data (PlatformSettings, one row) and the platform's own issuer.

    found = settings(session)            # the row, or None before the operator first saves
    row = settings_for_update(session)   # the row, created (not committed) when missing
    issuer = platform_issuer(session)    # the issuer whose CFDI the merchants get, or None
    candidates(session)                  # issuers that may be the platform's own
    clabe_problem("012164001016446374")  # None, or "length" / "digits" / "check_digit"

The platform operator is an issuer too: its CFDI for a merchant's payment is stamped through
the one stamping road, by an issuer of the platform that the operator picks in its settings
(an existing Mexican issuer, made like any other: `flask issuers create` or the onboarding,
then its CSD and PAC in its own settings). Its `licence_expires_at` and `stamp_credits` are
normally None (unmetered, no licence check).

CLABE (Clave Bancaria Estandarizada, Banxico): 18 digits: bank (3), plaza (3), account (11)
and a check digit (weights 3, 7, 1), computed by the `clabe` package.
"""

from __future__ import annotations

import re

import clabe
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Issuer, PlatformSettings

CLABE_LENGTH = 18


def normalize_clabe(value: str) -> str:
    """The CLABE as typed without blanks or dashes (banks print it in groups)."""
    return re.sub(r"[\s-]", "", value or "")


def clabe_problem(value: str) -> str | None:
    """Why `value` (normalized) is not a CLABE: "length", "digits" or "check_digit"; None
    when it is one."""
    if not value.isascii() or not value.isdigit():
        return "digits"
    if len(value) != CLABE_LENGTH:
        return "length"
    if clabe.compute_control_digit(value[:17]) != value[17]:
        return "check_digit"
    return None


def settings(session: Session) -> PlatformSettings | None:
    """The operator's settings row (the lowest id, should there ever be two), or None."""
    return session.scalar(select(PlatformSettings).order_by(PlatformSettings.id).limit(1))


def settings_for_update(session: Session) -> PlatformSettings:
    """The settings row to change: the existing one, or a new one added to the session."""
    found = settings(session)
    if found is None:
        found = PlatformSettings()
        session.add(found)
    return found


def platform_issuer(session: Session) -> Issuer | None:
    """The platform's own issuer (whose CFDI the merchants get), or None when unset."""
    found = settings(session)
    if found is None or found.platform_issuer_id is None:
        return None
    return session.get(Issuer, found.platform_issuer_id)


def candidates(session: Session) -> list[Issuer]:
    """Issuers that may be the platform's own: Mexican (its CFDI to Mexican merchants) and
    done with their onboarding, by razón social."""
    return list(
        session.scalars(
            select(Issuer)
            .where(Issuer.country == "MX", Issuer.onboarding_pending.is_(False))
            .order_by(Issuer.legal_name, Issuer.id)
        )
    )


def thresholds(text: str) -> list[int]:
    """The low-credit warning thresholds of "100, 20, 0": distinct, highest first;
    ValueError for anything but whole numbers ≥ 0."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not parts:
        return []
    values = set()
    for part in parts:
        if not part.isascii() or not part.isdigit() or len(part) > 7:
            raise ValueError(part)
        values.add(int(part))
    return sorted(values, reverse=True)


def banks(text: str) -> list[str]:
    """The banks where merchants may pay, from the stored comma-separated text."""
    return [b.strip() for b in (text or "").split(",") if b.strip()]
