"""Queueing a text message: an SmsMessage row added to the caller's session, never committed here.

Numbers are kept in E.164 ("+" country code, national number). Two countries are accepted, the
ones the portal serves: Mexico (+52 and ten digits; no area code starts with 0 or 1) and
Ecuador (+593 and a mobile number: 9 and eight digits; landlines cannot receive SMS).

Texts are measured as the network carries them (3GPP TS 23.038): in the GSM 7-bit alphabet
when every character is in it (160 characters in one message, 153 in each part of a longer
one, the characters of the extension table counting two), else in UCS-2 (70 UTF-16 units, 67
per part). Spanish "á í ó ú" are not in the GSM alphabet: "Su código ..." goes as UCS-2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from webapp.models import SmsMessage

MAX_SEGMENTS = 3  # a longer text is refused

# The GSM 7-bit default alphabet, without the escape (0x1B), and its extension table: a
# character of the extension table is sent as escape + character, two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€")
GSM7_SINGLE, GSM7_PART = 160, 153  # septets: one message; each part of a concatenated one
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units

# Separators people type inside a number; anything else but digits (and a leading +) is refused.
_SEPARATORS = re.compile(r"[ \u00a0.\-()]")
NUMBER_INPUT_MAX = 32
_MEXICO = re.compile(r"[2-9]\d{9}")  # the ten digits of a Mexican number
_ECUADOR_MOBILE = re.compile(r"9\d{8}")  # after +593 (nationally 09 and eight digits)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # line feeds are allowed in a text


def normalise_number(value: str) -> str:
    """The E.164 form of a Mexican or Ecuadorian mobile number; ValueError for anything else.

    Accepted: "55 1234 5678", "5512345678", "(55) 1234-5678", "+52 55 1234 5678", "+52 1 55 1234
    5678" (the mobile "1" Mexico dropped in 2019), "+593 99 123 4567" and "099 123 4567".
    """
    if not isinstance(value, str):
        raise ValueError("phone number must be a string")
    raw = value.strip()
    if not raw:
        raise ValueError("empty phone number")
    if len(raw) > NUMBER_INPUT_MAX:
        raise ValueError("phone number too long")
    international = raw.startswith("+")
    digits = _SEPARATORS.sub("", raw[1:] if international else raw)
    if not re.fullmatch(r"[0-9]+", digits):
        raise ValueError(f"phone number has characters other than digits: {value!r}")
    if international:
        if digits.startswith("52"):
            national = digits[2:]
            if len(national) == 11 and national.startswith("1"):
                national = national[1:]  # +52 1: the mobile prefix abolished in 2019
            if _MEXICO.fullmatch(national):
                return f"+52{national}"
            raise ValueError(f"not a Mexican number (+52 and ten digits): {value!r}")
        if digits.startswith("593"):
            if _ECUADOR_MOBILE.fullmatch(digits[3:]):
                return f"+{digits}"
            raise ValueError(f"not an Ecuadorian mobile number (+593 9…, 9 digits): {value!r}")
        raise ValueError(f"only Mexican (+52) and Ecuadorian (+593) numbers: {value!r}")
    if _MEXICO.fullmatch(digits):
        return f"+52{digits}"
    if len(digits) == 10 and digits.startswith("0") and _ECUADOR_MOBILE.fullmatch(digits[1:]):
        return f"+593{digits[1:]}"
    raise ValueError(f"not a ten-digit Mexican number nor an Ecuadorian mobile: {value!r}")


def mask(number: str) -> str:
    """A number for logs: the country code and the last four digits (+52******5678)."""
    country = "+593" if number.startswith("+593") else number[:3]
    hidden = max(len(number) - len(country) - 4, 0)
    return country + "*" * hidden + number[len(country) + hidden :]


@dataclass(frozen=True)
class Segments:
    """How a text travels: its encoding and in how many messages (parts)."""

    encoding: str  # "GSM-7" or "UCS-2"
    count: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def _parts(sizes: list[int], single: int, part: int) -> int:
    """Messages needed for characters of these sizes, a character never split between two."""
    total = sum(sizes)
    if total <= single:
        return 1
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count


def segments(text: str) -> Segments:
    """The encoding of `text` and the number of messages it takes (0 for an empty text)."""
    if not text:
        return Segments("GSM-7", 0, 0)
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return Segments("GSM-7", _parts(sizes, GSM7_SINGLE, GSM7_PART), sum(sizes))
    sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]  # surrogate pairs stay together
    return Segments("UCS-2", _parts(sizes, UCS2_SINGLE, UCS2_PART), sum(sizes))


def check_text(value: str) -> str:
    """The text without surrounding blanks; ValueError if empty, with control characters
    (line feeds are fine) or longer than MAX_SEGMENTS messages."""
    if not isinstance(value, str):
        raise ValueError("SMS text must be a string")
    text = value.strip()
    if not text:
        raise ValueError("empty SMS text")
    if _CONTROL.search(text):
        raise ValueError("SMS text must not contain control characters")
    found = segments(text)
    if found.count > MAX_SEGMENTS:
        limit = MAX_SEGMENTS * (GSM7_PART if found.encoding == "GSM-7" else UCS2_PART)
        raise ValueError(
            f"SMS text too long: {found.count} messages in {found.encoding} "
            f"({found.units} of at most {limit} units)"
        )
    return text


def queue_sms(session: Session, to: str, text: str) -> SmsMessage:
    """Add a text message to `session` for the worker to send once the caller commits.

    `to` is normalised to E.164 (normalise_number); `text` is stripped and may take up to
    MAX_SEGMENTS messages (check_text). ValueError for either one refused.
    """
    message = SmsMessage(to_number=normalise_number(to), text=check_text(text))
    session.add(message)
    return message
