"""Configuration read from the environment, with embedded defaults for a newcomer."""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

TRUE = {"1", "true", "yes", "on"}
PACS = ("sandbox", "finkok", "sw")  # stamping providers this version can talk to
# REDIS_URL schemes the rate limiter's storage (the `limits` package) understands
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
# The SMS outbox (webapp.sms): where it delivers, the sender, retries, and the timeouts of a
# provider's API (connect; each read). Checked at start (webapp.sms.transport.check_settings).
SMS = {
    "SMS_URL": "file://instance/sms",
    "SMS_FROM": "",
    "SMS_MAX_ATTEMPTS": 6,
    "SMS_RETRY_SECONDS": 10.0,
    "SMS_LEASE_SECONDS": 120.0,
    "SMS_CONNECT_TIMEOUT_SECONDS": 5.0,
    "SMS_TIMEOUT_SECONDS": 20.0,
}
KIOSK_SETTINGS = {
    "KIOSK_IDLE_SECONDS": 60,
    "KIOSK_COUNTDOWN_SECONDS": 15,
    "KIOSK_ENROL_HOURS": 24,
    "KIOSK_PHONE_LINK_MINUTES": 15,
}


def _flag(name: str, default: bool | None = False) -> bool | None:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in TRUE


def _instance_key(instance: Path, name: str) -> str:
    """The key kept in instance/`name`, generated (random, mode 0600) on first use.

    The file appears complete or not at all (written aside, then hard-linked into place), so
    processes starting together agree on one key.
    """
    path = instance / name
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    aside = instance / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        os.link(aside, path)  # fails if another process was first: then its key is the key
    except FileExistsError:
        return _read_key(path)
    except OSError:  # a file system without hard links: create it in place
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_key(path)
        with os.fdopen(fd, "w") as f:
            f.write(key)
    finally:
        aside.unlink(missing_ok=True)
    return key


def _read_key(path: Path) -> str:
    if key := path.read_text().strip():
        return key
    raise RuntimeError(f"{path} is empty: set the key in the environment or restore the file")


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into instance/ and reused."""
    return os.environ.get("SECRET_KEY") or _instance_key(instance, "secret_key")


_warned_local_data_key = False


def _data_key(instance: Path) -> str:
    """DATA_KEY from the environment, else one generated once into instance/data_key and reused.

    It encrypts the stored CSDs and PAC credentials (webapp.crypto): every process on every
    machine needs the same one, and losing it loses them.
    """
    global _warned_local_data_key
    if key := os.environ.get("DATA_KEY"):
        return key
    if os.environ.get("SECRET_KEY") and not _warned_local_data_key:
        _warned_local_data_key = True
        logging.getLogger(__name__).warning(
            "SECRET_KEY is set in the environment but DATA_KEY is not: using %s of this "
            "machine. Every process on every machine must use the same DATA_KEY; set it in "
            "the environment too (README, Production).",
            instance / "data_key",
        )
    return _instance_key(instance, "data_key")


def check(settings: dict) -> None:
    """Refuse to start with a setting that cannot work, saying which and why."""
    from webapp.security.captcha import check_config

    check_config(settings)
    if settings["PAC"] not in PACS:
        raise RuntimeError(f"PAC={settings['PAC']!r} is unknown; choose one of {', '.join(PACS)}")
    _check_pac(settings)
    if settings.get("SRI", "sandbox") not in ("sandbox", "sri"):
        raise RuntimeError(f"SRI={settings['SRI']!r} is unknown; choose sandbox or sri")
    days = settings.get("RETENTION_DAYS", 90)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise RuntimeError(f"RETENTION_DAYS={days!r} must be a whole number of days, at least 1")
    _check_logs(settings)
    _check_limits(settings)
    _check_proxies_and_redis(settings)
    _check_sms(settings)
    for name, default in KIOSK_SETTINGS.items():
        value = settings.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RuntimeError(f"{name}={value!r} must be a whole number, at least 1")


def _check_sms(settings: dict) -> None:
    from webapp.sms.transport import check_settings

    try:
        check_settings({name: settings.get(name, default) for name, default in SMS.items()})
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None


def _check_logs(settings: dict) -> None:
    from webapp.observability import FORMATS, LEVELS

    log_format = settings.get("LOG_FORMAT", "text")
    if log_format not in FORMATS:
        raise RuntimeError(
            f"LOG_FORMAT={log_format!r} is unknown; choose one of {', '.join(FORMATS)}"
        )
    level = settings.get("LOG_LEVEL", "INFO")
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise RuntimeError(f"LOG_LEVEL={level!r} is unknown; choose one of {', '.join(LEVELS)}")


def _check_proxies_and_redis(settings: dict) -> None:
    proxies = settings.get("TRUSTED_PROXIES", 0)
    if not isinstance(proxies, int) or isinstance(proxies, bool) or proxies < 0:
        raise RuntimeError(
            f"TRUSTED_PROXIES={proxies!r} must be the number of proxies in front (0 for none)"
        )
    url = settings.get("REDIS_URL")
    if not url:
        return
    if str(url).partition("://")[0] not in REDIS_SCHEMES:
        raise RuntimeError(
            f"REDIS_URL={url!r} must start with one of {', '.join(REDIS_SCHEMES)} and ://"
        )
    if importlib.util.find_spec("redis") is None:
        raise RuntimeError(
            "REDIS_URL is set but the redis package is missing: pip install -e '.[redis]'"
        )


# Limits of mail and guesses (see from_environment): whole numbers, at least this much.
LIMIT_NUMBERS = {
    "INVOICE_MAIL_MAX_RECIPIENTS": (5, 1),
    "TICKET_CAPTCHA_AFTER_MISSES": (5, 0),
    "STAFF_INVITATION_HOURS": (72, 1),
}
LIMIT_STRINGS = (
    "RATELIMIT_REGISTERED_NOTICE",
    "RATELIMIT_INVOICE_MAIL",
    "RATELIMIT_INVOICE_MAIL_SESSION",
    "RATELIMIT_INVOICE_MAIL_IP",
    "RATELIMIT_TICKET_IP",
    "RATELIMIT_TICKET_BRANCH",
    "RATELIMIT_LINE_CODE_NUMBER",
    "RATELIMIT_LINE_CODE_ACCOUNT",
    "RATELIMIT_LINE_CODE_IP",
)


def _check_limits(settings: dict) -> None:
    from limits import parse_many

    for name, (default, least) in LIMIT_NUMBERS.items():
        value = settings.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise RuntimeError(f"{name}={value!r} must be a whole number, at least {least}")
    for name in LIMIT_STRINGS:
        value = settings.get(name)
        if value is None:
            continue
        try:
            parse_many(str(value))
        except ValueError:
            raise RuntimeError(
                f"{name}={value!r} must be limits such as 10/minute;60/hour"
            ) from None


def _check_pac(settings: dict) -> None:
    """A real PAC needs its credentials; every PAC needs a positive timeout and an http(s) URL."""
    pac = settings["PAC"]
    if pac == "finkok":
        for name in ("PAC_USERNAME", "PAC_PASSWORD"):
            if not settings.get(name):
                raise RuntimeError(f"PAC=finkok needs {name} (the Finkok account's credentials)")
    elif pac == "sw" and not settings.get("PAC_TOKEN"):
        missing = [n for n in ("PAC_USERNAME", "PAC_PASSWORD") if not settings.get(n)]
        if len(missing) == 2:
            raise RuntimeError("PAC=sw needs PAC_TOKEN (or PAC_USERNAME and PAC_PASSWORD)")
        if missing:
            given = "PAC_PASSWORD" if missing[0] == "PAC_USERNAME" else "PAC_USERNAME"
            raise RuntimeError(f"PAC=sw needs {missing[0]} beside {given} (or PAC_TOKEN alone)")
    timeout = settings.get("PAC_TIMEOUT_SECONDS", 30.0)
    if not isinstance(timeout, int | float) or not timeout > 0:
        raise RuntimeError(f"PAC_TIMEOUT_SECONDS={timeout!r} must be a positive number of seconds")
    for name in ("PAC_URL", "PAC_API_URL"):
        url = settings.get(name)
        if url and not str(url).startswith(("https://", "http://")):
            raise RuntimeError(f"{name}={url!r} must be an http:// or https:// URL")


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
        **{
            name: type(default)(os.environ.get(name, default))  # str, int or float
            for name, default in SMS.items()
        },
        "BASE_URL": os.environ.get("BASE_URL", f"http://127.0.0.1:{port}"),
        # Proxies in front that append to X-Forwarded-For and set X-Forwarded-Proto (0: none;
        # nginx or Caddy on the machine: 1). webapp.security.web.trust_proxies.
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        # Session, language and branch cookies: HttpOnly, SameSite=Lax, and Secure when
        # BASE_URL is https (None here) unless SESSION_COOKIE_SECURE says otherwise.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE", None),
        "PORT": port,
        "PAC": os.environ.get("PAC", "sandbox"),
        "PAC_SANDBOX_DIR": os.environ.get("PAC_SANDBOX_DIR", str(instance / "sandbox-pac")),
        "PAC_USERNAME": os.environ.get("PAC_USERNAME"),
        "PAC_PASSWORD": os.environ.get("PAC_PASSWORD"),
        "PAC_TOKEN": os.environ.get("PAC_TOKEN"),
        "PAC_URL": os.environ.get("PAC_URL"),
        "PAC_API_URL": os.environ.get("PAC_API_URL"),
        "PAC_PRODUCTION": _flag("PAC_PRODUCTION"),
        "PAC_TIMEOUT_SECONDS": float(os.environ.get("PAC_TIMEOUT_SECONDS", "30")),
        # Ecuador: who authorises SRI facturas: "sandbox" (the app's own offline SRI, test
        # ambiente, nothing leaves the machine) or "sri" (SRI's offline web services in
        # SRI_ENVIRONMENT 1 pruebas / 2 producción; SRI_URL points the client elsewhere).
        "SRI": os.environ.get("SRI", "sandbox"),
        "SRI_SANDBOX_DIR": os.environ.get("SRI_SANDBOX_DIR", str(instance / "sandbox-sri")),
        # Merchants' proofs of payment (webapp.platform.proofs): outside the web root.
        "PROOFS_DIR": os.environ.get("PROOFS_DIR", str(instance / "proofs")),
        "SRI_ENVIRONMENT": os.environ.get("SRI_ENVIRONMENT", "1"),
        "SRI_URL": os.environ.get("SRI_URL"),
        "SRI_CONNECT_TIMEOUT_SECONDS": float(os.environ.get("SRI_CONNECT_TIMEOUT_SECONDS", "10")),
        "SRI_READ_TIMEOUT_SECONDS": float(os.environ.get("SRI_READ_TIMEOUT_SECONDS", "30")),
        "DATA_KEY": _data_key(instance),
        "DEBUG": _flag("DEBUG"),
        # Logs on stderr: "text" lines, or "json" (one object per line); the root logger's level.
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text").strip().lower(),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").strip().upper(),
        "DEV_MAILBOX": _flag("DEV_MAILBOX"),
        "CAPTCHA": os.environ.get("CAPTCHA", "on"),
        "REDIS_URL": os.environ.get("REDIS_URL"),
        "SUPPORT_CONTACT": os.environ.get("SUPPORT_CONTACT", "soporte@autofactura.invalid"),
        "SESSION_IDLE_MINUTES": int(os.environ.get("SESSION_IDLE_MINUTES", "30")),
        "SESSION_MAX_HOURS": int(os.environ.get("SESSION_MAX_HOURS", "12")),
        # Days an invoice's files stay at hand after stamping; then they move to the archive.
        "RETENTION_DAYS": int(os.environ.get("RETENTION_DAYS", "90")),
        "PANEL_ZIP_MAX": int(os.environ.get("PANEL_ZIP_MAX", "2000")),
        # Kiosks: seconds without input before the countdown, and the countdown's length;
        # hours an enrolment link lasts; minutes a "Continuar en mi teléfono" link lasts.
        "KIOSK_IDLE_SECONDS": int(os.environ.get("KIOSK_IDLE_SECONDS", "60")),
        "KIOSK_COUNTDOWN_SECONDS": int(os.environ.get("KIOSK_COUNTDOWN_SECONDS", "15")),
        "KIOSK_ENROL_HOURS": int(os.environ.get("KIOSK_ENROL_HOURS", "24")),
        "KIOSK_PHONE_LINK_MINUTES": int(os.environ.get("KIOSK_PHONE_LINK_MINUTES", "15")),
        # Compress answers (br, gzip); COMPRESS=0 when a proxy in front already does it.
        "COMPRESS_REGISTER": _flag("COMPRESS", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        "RATELIMIT_KEY_PREFIX": "autofactura",  # a Redis shared with other apps
        # Redis unreachable: each process limits on its own (in memory) rather than answer 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": bool(os.environ.get("REDIS_URL")),
        "RATELIMIT_ENABLED": _flag("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_SIGNIN_IP": os.environ.get("RATELIMIT_SIGNIN_IP", "30/minute;300/hour"),
        "RATELIMIT_SIGNIN_ACCOUNT": os.environ.get("RATELIMIT_SIGNIN_ACCOUNT", "10/minute"),
        "RATELIMIT_EMAIL_IP": os.environ.get("RATELIMIT_EMAIL_IP", "10/minute;60/hour"),
        "RATELIMIT_API": os.environ.get("RATELIMIT_API", "600/minute"),  # per API key
        # One "ya está registrado" email per address per this, whatever the IP.
        "RATELIMIT_REGISTERED_NOTICE": os.environ.get("RATELIMIT_REGISTERED_NOTICE", "1/hour"),
        # Invoice emails ("Enviar por correo", the two "Reenviar"), each address counting one:
        # addresses in one request; then per invoice, per browser session (per account when
        # signed in) and per IP (per kiosk terminal on a kiosk).
        "INVOICE_MAIL_MAX_RECIPIENTS": int(os.environ.get("INVOICE_MAIL_MAX_RECIPIENTS", "5")),
        "RATELIMIT_INVOICE_MAIL": os.environ.get("RATELIMIT_INVOICE_MAIL", "10/hour"),
        "RATELIMIT_INVOICE_MAIL_SESSION": os.environ.get(
            "RATELIMIT_INVOICE_MAIL_SESSION", "20/hour"
        ),
        "RATELIMIT_INVOICE_MAIL_IP": os.environ.get(
            "RATELIMIT_INVOICE_MAIL_IP", "10/minute;50/hour"
        ),
        # Ticket checks (inline, "Agregar", "Generar factura", "Reenviar la factura") per IP (per
        # kiosk terminal on a kiosk) and per branch; the captcha on the ticket form after this
        # many answers "not found / does not match" in a browser session (0: never).
        "RATELIMIT_TICKET_IP": os.environ.get("RATELIMIT_TICKET_IP", "60/minute;1000/hour"),
        "RATELIMIT_TICKET_BRANCH": os.environ.get(
            "RATELIMIT_TICKET_BRANCH", "300/minute;5000/hour"
        ),
        "TICKET_CAPTCHA_AFTER_MISSES": int(os.environ.get("TICKET_CAPTCHA_AFTER_MISSES", "5")),
        # Codes sent by SMS to add a line (Mis servicios): per number, per account, per IP (per
        # kiosk terminal on a kiosk); each counts the codes made, whether the number is a line.
        "RATELIMIT_LINE_CODE_NUMBER": os.environ.get("RATELIMIT_LINE_CODE_NUMBER", "3/hour"),
        "RATELIMIT_LINE_CODE_ACCOUNT": os.environ.get("RATELIMIT_LINE_CODE_ACCOUNT", "10/hour"),
        "RATELIMIT_LINE_CODE_IP": os.environ.get("RATELIMIT_LINE_CODE_IP", "20/hour"),
        # Hours a staff invitation link works (a recovery link: SECURITY_RESET_LINK_MINUTES).
        "STAFF_INVITATION_HOURS": int(os.environ.get("STAFF_INVITATION_HOURS", "72")),
        "API_IDEMPOTENCY_HOURS": int(os.environ.get("API_IDEMPOTENCY_HOURS", "24")),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", str(4 * 1024 * 1024))),
        # SECURITY_PRESET (modern | seed) and SECURITY_<KNOB> overrides: webapp.security.policy
        **{k: v for k, v in os.environ.items() if k.startswith("SECURITY_")},
    }
