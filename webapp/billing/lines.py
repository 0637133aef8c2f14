"""Proving a customer holds a line (seed 002, "Agregar línea"): a 6-digit code sent by SMS to
the line, typed back on the page.

- The answer never tells whether a number is a line of the issuer: every request writes a
  LineCode row (line_id None for a number that is no line) and answers the same; only the SMS
  differs, and only the holder of the phone sees it. A phone line's code goes to the line
  itself; a contract line's (home services) to its service account's contact mobile.
- The code is stored hashed: HMAC-SHA256 under a key derived from the server's secret, bound
  to the account, the issuer and the number (a row's hash is useless for another), and
  compared in constant time. The plaintext lives only in the SMS outbox's text, which is
  blanked once the code has expired (`purge_expired_texts`).
- A code lasts CODE_TTL, works once (used_at), and MAX_ATTEMPTS wrong tries end it.
- Another code for the same number only RESEND_AFTER after the last one was sent; it is a new
  code, and the one before stops working. A new code rather than the same one again: only the
  hash is kept, so the same code could not be sent again without keeping it in clear, and
  wrong tries against the old code do not carry over to a code nobody has tried yet.
- Requests of one account are serialised (its row locked, or SQLite's write lock), so parallel
  requests cannot both pass the wait; limits per number, account and IP are the caller's
  (`admit`, counted atomically by webapp.ratelimits.take).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.db import lock_for_write
from webapp.models import (
    Account,
    AccountStatus,
    Issuer,
    LineCode,
    LineHolder,
    LineKind,
    ServiceLine,
    ServiceType,
    SmsMessage,
    SmsStatus,
)
from webapp.sms.outbox import GSM7_BASIC, GSM7_EXTENSION, normalise_number, queue_sms, segments

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
RESEND_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
NUMBER_INPUT_MAX = 40  # what a number field accepts before anything else is checked
_CONTRACT = re.compile(r"[A-Z0-9][A-Z0-9-]{0,39}")
_CODE = re.compile(r"[0-9]{6}")
_KEY_PURPOSE = b"autofactura-line-code"

# The SMS: "<issuer>: su código para agregar la línea es 123456. Vence en 10 minutos."; the
# words between the colon and the code are what `purge_expired_texts` recognises.
SMS_TEMPLATE = "{name}: su código para agregar la línea es {code}. Vence en 10 minutos."
_SMS_MARKER = "%para agregar la l_nea es %"  # LIKE pattern: línea (UCS-2) or linea (GSM-7)
PURGED_TEXT = "Código para agregar una línea (vencido y borrado)."


class Outcome(StrEnum):
    SENT = "sent"  # a code was made (and sent, when the number is a line)
    TOO_SOON = "too_soon"  # the last code for this number was sent less than RESEND_AFTER ago
    LIMITED = "limited"  # `admit` refused (a limit per number, account or IP is full)


@dataclass(frozen=True)
class Requested:
    outcome: Outcome
    number: str  # as normalised
    wait_seconds: int = 0  # TOO_SOON: seconds until another code may be asked for
    code: LineCode | None = None  # SENT: the row written (whether or not the number is a line)


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalise(service_type: ServiceType, value: str) -> str:
    """The number as lines are stored: E.164 for a phone kind of service, else the contract
    number trimmed and upper-cased (letters, digits and dashes). ValueError for anything else."""
    if not isinstance(value, str):
        raise ValueError("number must be a string")
    if len(value) > NUMBER_INPUT_MAX:
        raise ValueError("number too long")
    if service_type.line_kind is LineKind.PHONE:
        return normalise_number(value)
    contract = value.strip().upper()
    if not _CONTRACT.fullmatch(contract):
        raise ValueError(f"not a contract number: {value!r}")
    return contract


def is_code(value: str) -> bool:
    return isinstance(value, str) and bool(_CODE.fullmatch(value))


def _key(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, _KEY_PURPOSE, hashlib.sha256).digest()


def code_hash(secret: str | bytes, account_id: int, issuer_id: int, number: str, code: str) -> str:
    message = f"{account_id}|{issuer_id}|{number}|{code}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def _gsm7(text: str) -> str:
    """`text` with the letters the GSM 7-bit alphabet lacks (á í ó ú…) without their accent."""
    out = []
    for c in text:
        if c in GSM7_BASIC or c in GSM7_EXTENSION:
            out.append(c)
        else:
            base = unicodedata.normalize("NFD", c)[0]
            out.append(base if base in GSM7_BASIC else "?")
    return "".join(out)


def sms_text(issuer_name: str, code: str) -> str:
    """The code's SMS in one message: accented when it fits in UCS-2's 70 characters, else
    in the GSM 7-bit alphabet (160), the issuer's name shortened if even that is too long."""
    name = " ".join(issuer_name.split()) or "Mis servicios"
    text = SMS_TEMPLATE.format(name=name, code=code)
    if segments(text).count == 1:
        return text
    text = _gsm7(text)
    while segments(text).count > 1 and len(name) > 10:
        name = name[: len(name) - 5].rstrip()
        text = _gsm7(SMS_TEMPLATE.format(name=name, code=code))
    return text


def _latest(session: Session, account_id: int, issuer_id: int, number: str) -> LineCode | None:
    return session.scalar(
        select(LineCode)
        .where(
            LineCode.account_id == account_id,
            LineCode.issuer_id == issuer_id,
            LineCode.number == number,
        )
        .order_by(LineCode.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


def _lock_account(session: Session, account_id: int) -> None:
    """Serialise this account's code requests and confirmations: SQLite's write lock, or
    the account's row on PostgreSQL. Ends (rolls back) the session's open transaction."""
    session.rollback()
    lock_for_write(session)
    session.execute(select(Account.id).where(Account.id == account_id).with_for_update())


def find_line(
    session: Session, issuer_id: int, service_type_id: int, number: str
) -> ServiceLine | None:
    """The issuer's active line of that service type and number."""
    return session.scalar(
        select(ServiceLine).where(
            ServiceLine.issuer_id == issuer_id,
            ServiceLine.service_type_id == service_type_id,
            ServiceLine.number == number,
            ServiceLine.status == AccountStatus.ACTIVE,
        )
    )


def request_code(
    session: Session,
    account_id: int,
    issuer: Issuer,
    service_type: ServiceType,
    number: str,
    now: datetime,
    code_factory: Callable[[], str] = new_code,
    *,
    secret: str | bytes,
    admit: Callable[[str], bool] | None = None,
) -> Requested:
    """Make a code for `number` (a line of `service_type`, or not) and queue its SMS when the
    number is a line; the caller commits. ValueError for a number `normalise` refuses.

    `admit(number)` is asked once the wait has passed, just before the code is made (the
    caller's rate limits: False answers LIMITED and nothing is written). Ends the session's
    open transaction first (see _lock_account)."""
    if service_type.issuer_id != issuer.id:
        raise ValueError("service type of another issuer")
    number = normalise(service_type, number)
    issuer_id, issuer_name = issuer.id, issuer.legal_name
    type_id, kind = service_type.id, service_type.line_kind
    _lock_account(session, account_id)
    latest = _latest(session, account_id, issuer_id, number)
    if latest is not None and latest.sent_at + RESEND_AFTER > now:
        left = math.ceil((latest.sent_at + RESEND_AFTER - now).total_seconds())
        return Requested(Outcome.TOO_SOON, number, wait_seconds=max(left, 1))
    if admit is not None and not admit(number):
        return Requested(Outcome.LIMITED, number)
    if latest is not None and latest.used_at is None and latest.expires_at > now:
        latest.expires_at = now  # the new code replaces it
    line = find_line(session, issuer_id, type_id, number)
    code = code_factory()
    if not is_code(code):
        raise ValueError("a line code is six digits")
    row = LineCode(
        account_id=account_id,
        issuer_id=issuer_id,
        number=number,
        line_id=line.id if line else None,
        code_hash=code_hash(secret, account_id, issuer_id, number, code),
        attempts=0,
        created_at=now,
        sent_at=now,
        expires_at=now + CODE_TTL,
    )
    session.add(row)
    to = None
    if line is not None:
        to = line.number if kind is LineKind.PHONE else line.account.contact_mobile
        if to:
            try:
                to = queue_sms(session, to, sms_text(issuer_name, code)).to_number
            except ValueError:  # a contact mobile that cannot receive SMS: nothing sent
                to = None
    # The same statements whether or not the number is a line (the timing tells nothing).
    purge_expired_texts(session, now, to=to or (number if kind is LineKind.PHONE else ""))
    session.flush()
    return Requested(Outcome.SENT, number, code=row)


def confirm(
    session: Session,
    account_id: int,
    issuer: Issuer,
    number: str,
    code: str,
    now: datetime,
    *,
    secret: str | bytes,
) -> LineHolder | None:
    """The line now held by the account when `code` is the live code of `number` (as
    `request_code` normalised it) and the number is a line; else None, the try counted
    against the live code (MAX_ATTEMPTS end it). The caller commits. Ends the session's open
    transaction first."""
    issuer_id = issuer.id
    typed = code.strip() if isinstance(code, str) else ""
    _lock_account(session, account_id)
    latest = _latest(session, account_id, issuer_id, number)
    if (
        latest is None
        or latest.used_at is not None
        or latest.expires_at <= now
        or latest.attempts >= MAX_ATTEMPTS
    ):
        return None
    expected = code_hash(secret, account_id, issuer_id, number, typed)
    matches = hmac.compare_digest(latest.code_hash, expected)
    line = session.get(ServiceLine, latest.line_id) if latest.line_id is not None else None
    if not matches or line is None or line.status is not AccountStatus.ACTIVE:
        session.execute(
            update(LineCode).where(LineCode.id == latest.id).values(attempts=LineCode.attempts + 1),
            execution_options={"synchronize_session": False},
        )
        return None
    latest.used_at = now
    held = session.scalar(
        select(LineHolder).where(LineHolder.account_id == account_id, LineHolder.line_id == line.id)
    )
    if held is None:
        held = LineHolder(account_id=account_id, line_id=line.id, verified_at=now)
        session.add(held)
    session.flush()
    return held


def held_lines(session: Session, account_id: int, issuer_id: int) -> list[ServiceLine]:
    """The issuer's lines the account holds, in the order it added them."""
    return list(
        session.scalars(
            select(ServiceLine)
            .join(LineHolder, LineHolder.line_id == ServiceLine.id)
            .where(LineHolder.account_id == account_id, ServiceLine.issuer_id == issuer_id)
            .order_by(LineHolder.verified_at, LineHolder.id)
        )
    )


def held_line(
    session: Session, account_id: int, issuer_id: int, line_id: int
) -> ServiceLine | None:
    """The line when the account holds it (and it is the issuer's), else None."""
    return session.scalar(
        select(ServiceLine)
        .join(LineHolder, LineHolder.line_id == ServiceLine.id)
        .where(
            LineHolder.account_id == account_id,
            ServiceLine.issuer_id == issuer_id,
            ServiceLine.id == line_id,
        )
    )


def remove(session: Session, account_id: int, line_id: int) -> bool:
    """The account no longer holds the line (True when it did); the caller commits."""
    held = session.scalar(
        select(LineHolder).where(LineHolder.account_id == account_id, LineHolder.line_id == line_id)
    )
    if held is None:
        return False
    session.delete(held)
    session.flush()
    return True


def purge_expired_texts(session: Session, now: datetime, to: str | None = None) -> int:
    """Blank the text of line-code SMS already sent (or given up) whose code has expired, so
    the outbox keeps no usable code in clear; those of number `to` only when given. The
    number of texts blanked. (The SMS worker may call it for every number.)"""
    query = update(SmsMessage).where(
        SmsMessage.status.in_((SmsStatus.SENT, SmsStatus.DEAD)),
        SmsMessage.created_at <= now - CODE_TTL,
        SmsMessage.text.like(_SMS_MARKER),
    )
    if to is not None:
        query = query.where(SmsMessage.to_number == to)
    result = session.execute(
        query.values(text=PURGED_TEXT), execution_options={"synchronize_session": False}
    )
    return result.rowcount or 0
