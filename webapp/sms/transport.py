"""Transports named by SMS_URL.

file://instance/sms                    one .json file per message, relative to the project root
file:///var/spool/autofactura-sms      the same, absolute path
twilio://SID:TOKEN@api.twilio.com?from=%2B5215550000000
                                       Twilio's Messages API over https; `from` (url-encoded) is
                                       the sender, else SMS_FROM; `account=AC…` when SID:TOKEN
                                       is an API key (SK…) of that account
twilio+http://SID:TOKEN@127.0.0.1:8080?from=…
                                       the same over plain http, to a loopback host only (tests,
                                       a local mock of the provider)

A transport returns the provider's id of the message, or raises: SmsRefused when the provider
will never take this message (the worker moves it to the dead letters at once), anything else
for a failure that may pass (the worker tries again later).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import requests

from webapp.models import utcnow
from webapp.sms.outbox import segments

# The project directory (webapp.config.ROOT), which a relative file:// SMS_URL is under;
# not imported from webapp.config, whose start-up checks import this module.
ROOT = Path(__file__).resolve().parents[2]

TWILIO_API = "2010-04-01"
RETRYABLE_HTTP = frozenset({408, 425, 429})  # client errors that may pass by themselves
ERROR_BODY_MAX = 500
# A Twilio SID: two letters and 32 hex digits (account AC…, API key SK…); loosely checked,
# enough to keep the path of the request a plain one.
_SID = re.compile(r"[A-Za-z]{2}[0-9A-Fa-f]{32}")
# A sender: an E.164 number, a short code, or an alphanumeric sender id (at most 11).
_SENDER = re.compile(r"\+[1-9]\d{6,14}|\d{3,8}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


@dataclass(frozen=True)
class Sms:
    """A message as a transport sends it."""

    sms_id: int  # the outbox row
    to: str  # E.164
    sender: str  # SMS_FROM (the Twilio transport may have its own)
    text: str
    created_at: datetime


class SmsRefused(Exception):
    """The provider refused this message for good (a bad number, a blocked destination...)."""


class Transport(Protocol):
    def send(self, message: Sms) -> str | None:
        """Deliver `message`; the provider's id of it. SmsRefused for a permanent refusal."""

    def describe(self) -> str:
        """Where the messages go, without secrets, for logs."""


def file_name(sms_id: int, when: datetime) -> str:
    """A file name that sorts by time and names the outbox row: 20250131T235959.123456Z-42.json"""
    return f"{when:%Y%m%dT%H%M%S.%f}Z-{sms_id}.json"


@dataclass(frozen=True)
class FileTransport:
    """One JSON file per message, written atomically (temporary file, then rename); the file
    name is the provider id. /dev/sms reads them."""

    directory: Path

    def send(self, message: Sms) -> str:
        found = segments(message.text)
        record = {
            "id": message.sms_id,
            "to": message.to,
            "from": message.sender,
            "text": message.text,
            "encoding": found.encoding,
            "segments": found.count,
            "queued_at": message.created_at.isoformat(timespec="seconds"),
            "sent_at": utcnow().isoformat(timespec="seconds"),
        }
        name = file_name(message.sms_id, utcnow())
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False, indent=2)
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name

    def describe(self) -> str:
        return f"files in {self.directory}"


@dataclass(frozen=True)
class TwilioTransport:
    """Twilio's Messages API: POST {base}/2010-04-01/Accounts/{account}/Messages.json with To,
    From and Body, HTTP basic auth; 201 with the message's "sid".

    Every request waits at most `connect_timeout` to connect and `read_timeout` for each read.
    A 4xx answer but 408, 425 and 429 is a refusal for good (SmsRefused, with Twilio's code
    and message); 429, 5xx, timeouts and connection failures raise errors to try again.
    """

    base_url: str  # https://api.twilio.com, or http://127.0.0.1:port (twilio+http)
    username: str  # the account SID, or an API key SID
    password: str = field(repr=False)
    account: str  # the account SID of the URL path
    sender: str | None  # `from` of SMS_URL; None: SMS_FROM
    connect_timeout: float
    read_timeout: float
    _local: threading.local = field(
        default_factory=threading.local, repr=False, compare=False, hash=False
    )

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/{TWILIO_API}/Accounts/{self.account}/Messages.json"

    def send(self, message: Sms) -> str | None:
        sender = self.sender or message.sender
        answer = self._session().post(
            self.endpoint,
            data={"To": message.to, "From": sender, "Body": message.text},
            auth=(self.username, self.password),
            timeout=(self.connect_timeout, self.read_timeout),
            allow_redirects=False,
        )
        if 200 <= answer.status_code < 300:
            sid = _json(answer).get("sid")
            return sid if isinstance(sid, str) and sid else None
        problem = f"HTTP {answer.status_code}: {_problem(answer)}"
        if 400 <= answer.status_code < 500 and answer.status_code not in RETRYABLE_HTTP:
            raise SmsRefused(problem)
        raise RuntimeError(problem)

    def describe(self) -> str:
        return f"Twilio {self.base_url} account {self.account} as {self.username}"


def _json(answer: requests.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem(answer: requests.Response) -> str:
    """Twilio's error ("code": 21211, "message": "The 'To' number ... is not valid"), or the
    start of whatever else the answer says."""
    body = _json(answer)
    message = body.get("message")
    if isinstance(message, str) and message:
        code = body.get("code")
        return f"Twilio error {code}: {message}" if code else message
    return " ".join(answer.text[:ERROR_BODY_MAX].split()) or answer.reason or "no details"


def sms_directory(url: str) -> Path | None:
    """The directory of a file:// SMS_URL, or None for any other scheme."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise ValueError("SMS_URL file:// names no directory")
    return ROOT / path if parts.netloc else Path(path)


def redacted(url: str) -> str:
    """SMS_URL with its password (Twilio's token) replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_from_url(
    url: str, connect_timeout: float = 5.0, read_timeout: float = 20.0
) -> Transport:
    """The transport for SMS_URL; ValueError naming the problem (never the token)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        directory = sms_directory(url)
        assert directory is not None
        return FileTransport(directory)
    if scheme in ("twilio", "twilio+http"):
        return _twilio(parts, scheme, connect_timeout, read_timeout)
    raise ValueError(
        f"SMS_URL scheme {scheme or '(none)'!r} is not supported; use file:// or twilio://"
    )


def _twilio(parts, scheme: str, connect_timeout: float, read_timeout: float) -> TwilioTransport:
    host = parts.hostname
    if not host:
        raise ValueError("SMS_URL twilio:// needs a host: twilio://SID:TOKEN@api.twilio.com")
    if scheme == "twilio+http" and not _loopback(host):
        raise ValueError("SMS_URL twilio+http:// (no TLS) is only for a loopback host")
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if not username or not password:
        raise ValueError("SMS_URL twilio:// needs the credentials: twilio://SID:TOKEN@host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"SMS_URL has an invalid port: {exc}") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"from", "account"}
    if unknown:
        raise ValueError(f"SMS_URL has unknown parameters: {', '.join(sorted(unknown))}")
    account = query.get("account", [username])[-1]
    if not _SID.fullmatch(account):
        raise ValueError("SMS_URL: the account SID is two letters and 32 hex digits (AC…)")
    sender = query.get("from", [None])[-1]
    if sender is not None and not _SENDER.fullmatch(sender):
        raise ValueError(
            "SMS_URL from= must be an E.164 number (url-encode the +: %2B), a short code or an "
            "alphanumeric sender id"
        )
    for name, value in (("connect", connect_timeout), ("read", read_timeout)):
        if not value > 0:
            raise ValueError(f"the SMS {name} timeout must be a positive number of seconds")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    base = urlunsplit(("https" if scheme == "twilio" else "http", netloc, "", "", ""))
    return TwilioTransport(
        base_url=base,
        username=username,
        password=password,
        account=account,
        sender=sender,
        connect_timeout=float(connect_timeout),
        read_timeout=float(read_timeout),
    )


def check_settings(settings: Mapping) -> None:
    """ValueError naming the SMS_* setting that cannot work (webapp.config.check, at start)."""
    connect = settings["SMS_CONNECT_TIMEOUT_SECONDS"]
    read = settings["SMS_TIMEOUT_SECONDS"]
    for name, value in (("SMS_CONNECT_TIMEOUT_SECONDS", connect), ("SMS_TIMEOUT_SECONDS", read)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name}={value!r} must be a positive number of seconds")
    url = str(settings["SMS_URL"])
    try:
        transport = transport_from_url(url, connect, read)
    except ValueError as exc:
        raise ValueError(f"SMS_URL={redacted(url)!r} cannot work: {exc}") from None
    sender = settings["SMS_FROM"]
    if not isinstance(sender, str) or (sender and not _SENDER.fullmatch(sender)):
        raise ValueError(
            f"SMS_FROM={sender!r} must be an E.164 number (+52…), a short code or an "
            "alphanumeric sender id (at most 11 letters, digits and spaces)"
        )
    if isinstance(transport, TwilioTransport) and not (transport.sender or sender):
        raise ValueError("SMS_URL twilio:// needs a sender: from=%2B52… in the URL, or SMS_FROM")
    attempts = settings["SMS_MAX_ATTEMPTS"]
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise ValueError(f"SMS_MAX_ATTEMPTS={attempts!r} must be a whole number, at least 1")
    retry = settings["SMS_RETRY_SECONDS"]
    if not isinstance(retry, int | float) or isinstance(retry, bool) or not retry > 0:
        raise ValueError(f"SMS_RETRY_SECONDS={retry!r} must be a positive number of seconds")
    lease = settings["SMS_LEASE_SECONDS"]
    if not isinstance(lease, int | float) or isinstance(lease, bool) or not lease > connect + read:
        raise ValueError(
            f"SMS_LEASE_SECONDS={lease!r} must be longer than a request may take "
            f"(SMS_CONNECT_TIMEOUT_SECONDS + SMS_TIMEOUT_SECONDS = {connect + read:g})"
        )


def transport_from_config(config: Mapping) -> Transport:
    """The transport for an app's SMS_URL and its timeouts."""
    return transport_from_url(
        config["SMS_URL"],
        float(config["SMS_CONNECT_TIMEOUT_SECONDS"]),
        float(config["SMS_TIMEOUT_SECONDS"]),
    )
