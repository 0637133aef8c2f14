"""Configuration read from the environment, with embedded defaults for a newcomer."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

TRUE = {"1", "true", "yes", "on"}
PACS = ("sandbox",)  # stamping providers this version can talk to


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in TRUE


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into instance/ and reused."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def check(settings: dict) -> None:
    """Refuse to start with a setting that cannot work, saying which and why."""
    if settings["PAC"] not in PACS:
        raise RuntimeError(f"PAC={settings['PAC']!r} is unknown; choose one of {', '.join(PACS)}")


def from_environment(instance: Path = INSTANCE) -> dict:
    """Every setting the app reads, each from its environment variable or its default."""
    port = int(os.environ.get("PORT", "5000"))
    return {
        "SECRET_KEY": _secret_key(instance),
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'autofactura.db'}"),
        "MAIL_URL": os.environ.get("MAIL_URL", "file://instance/mail"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Autofactura <no-responder@localhost>"),
        "MAIL_MAX_ATTEMPTS": int(os.environ.get("MAIL_MAX_ATTEMPTS", "8")),
        "MAIL_RETRY_SECONDS": float(os.environ.get("MAIL_RETRY_SECONDS", "30")),
        "MAIL_LEASE_SECONDS": float(os.environ.get("MAIL_LEASE_SECONDS", "120")),
        "MAIL_TIMEOUT_SECONDS": float(os.environ.get("MAIL_TIMEOUT_SECONDS", "20")),
        "BASE_URL": os.environ.get("BASE_URL", f"http://127.0.0.1:{port}"),
        "PORT": port,
        "PAC": os.environ.get("PAC", "sandbox"),
        "PAC_SANDBOX_DIR": os.environ.get("PAC_SANDBOX_DIR", str(instance / "sandbox-pac")),
        "DATA_KEY": os.environ.get("DATA_KEY"),
        "DEBUG": _flag("DEBUG"),
        "DEV_MAILBOX": _flag("DEV_MAILBOX"),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", str(4 * 1024 * 1024))),
        # SECURITY_PRESET (modern | seed) and SECURITY_<KNOB> overrides: webapp.accounts.policy
        **{k: v for k, v in os.environ.items() if k.startswith("SECURITY_")},
    }
