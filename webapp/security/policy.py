"""Security rules as settings, with two presets (PRODUCT.md, "Security policy").

`seed` reproduces the manuals (lock at the 3rd failure, captcha after a failure, a password
change every 30 days, uppercase + punctuation + digit + 8 characters, secret question,
temporary password by email). `modern`, the default, follows OWASP ASVS 5.0 and NIST SP
800-63B-4 (12 to 64+ characters, no composition rules, a blocklist, no expiry, throttling with
a temporary lock, reset by single-use link). Every knob can be set alone with
SECURITY_<KNOB> (e.g. SECURITY_PASSWORD_MIN_LENGTH=14).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class SecurityPolicy:
    password_min_length: int
    password_max_length: int
    password_composition: bool  # require uppercase, digit and punctuation
    password_blocklist: bool  # refuse common passwords and context words (RFC, email)
    password_max_age_days: int  # 0: never expires
    lock_after_failures: int  # 0: never; a lock that only the emailed link lifts
    throttle_after_failures: int  # 0: never; a temporary lock of throttle_minutes
    throttle_minutes: int
    captcha_after_failures: int  # 0: never
    secret_question: bool
    recovery: str  # "link" or "temporary_password"
    verification_link_hours: int
    reset_link_minutes: int
    resend_verification_minutes: int  # at most one verification email per this many minutes
    new_device_notice: bool  # email the owner when someone signs in from a new browser


PRESETS = {
    "modern": SecurityPolicy(
        password_min_length=12,
        password_max_length=128,
        password_composition=False,
        password_blocklist=True,
        password_max_age_days=0,
        lock_after_failures=0,
        throttle_after_failures=5,
        throttle_minutes=15,
        captcha_after_failures=1,
        secret_question=False,
        recovery="link",
        verification_link_hours=48,
        reset_link_minutes=30,
        resend_verification_minutes=5,
        new_device_notice=True,
    ),
    "seed": SecurityPolicy(
        password_min_length=8,
        password_max_length=64,
        password_composition=True,
        password_blocklist=False,
        password_max_age_days=30,
        lock_after_failures=3,
        throttle_after_failures=0,
        throttle_minutes=15,
        captcha_after_failures=1,
        secret_question=True,
        recovery="temporary_password",
        verification_link_hours=48,
        reset_link_minutes=60,
        resend_verification_minutes=5,
        new_device_notice=True,
    ),
}


def from_settings(settings: Mapping[str, str]) -> SecurityPolicy:
    """The preset named by SECURITY_PRESET (default modern) with SECURITY_<KNOB> overrides."""
    name = settings.get("SECURITY_PRESET", "modern")
    if name not in PRESETS:
        raise ValueError(f"SECURITY_PRESET={name!r} is unknown; choose one of {', '.join(PRESETS)}")
    overrides = {}
    for f in fields(SecurityPolicy):
        raw = settings.get(f"SECURITY_{f.name.upper()}")
        if raw is None:
            continue
        if f.type == "bool":
            overrides[f.name] = str(raw).strip().lower() in {"1", "true", "yes", "on"}
        elif f.type == "int":
            try:
                overrides[f.name] = int(raw)
            except ValueError:
                raise ValueError(f"SECURITY_{f.name.upper()} must be a whole number") from None
        else:
            overrides[f.name] = str(raw)
    policy = replace(PRESETS[name], **overrides)
    if policy.recovery not in {"link", "temporary_password"}:
        raise ValueError("SECURITY_RECOVERY must be 'link' or 'temporary_password'")
    if policy.password_min_length < 8 or policy.password_max_length < 64:
        raise ValueError("passwords must allow at least 8 and up to at least 64 characters")
    return policy
