"""The invoicing window: until when a sale can be invoiced. Merchant policy, not law.

Dates are judged in Mexico City local time by default: a sale at 23:30 on January 31 belongs to
January, although it is February 1 in UTC. A policy is stored in one short column as
"<kind>:<days>": "until_day_next_month:3" (the default), "same_month:0", "days_after:30".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_POLICY",
    "MAX_DAYS_AFTER",
    "MEXICO_CITY",
    "WindowKind",
    "WindowPolicy",
    "in_window",
    "parse_policy",
    "serialize_policy",
    "window_end",
]

MEXICO_CITY = "America/Mexico_City"
MAX_DAYS_AFTER = 366
"""Longest DAYS_AFTER window accepted."""
_MAX_DAY_OF_MONTH = 31


class WindowKind(StrEnum):
    """How the window is measured from the sale's local date."""

    SAME_MONTH = "same_month"
    """Until the end of the sale's calendar month (days must be 0)."""
    DAYS_AFTER = "days_after"
    """Until the end of the N-th day after the sale's date (0: the sale's day only)."""
    UNTIL_DAY_NEXT_MONTH = "until_day_next_month"
    """The sale's month plus the first K days of the next month (K from 1 to 31; a K beyond the
    next month's length means the whole next month)."""


@dataclass(frozen=True)
class WindowPolicy:
    """A window kind and its number of days; ValueError when they do not make sense."""

    kind: WindowKind
    days: int

    def __post_init__(self) -> None:
        kind = WindowKind(self.kind)  # ValueError for an unknown kind
        object.__setattr__(self, "kind", kind)
        if isinstance(self.days, bool) or not isinstance(self.days, int):
            raise ValueError("days must be an integer")
        low, high = {
            WindowKind.SAME_MONTH: (0, 0),
            WindowKind.DAYS_AFTER: (0, MAX_DAYS_AFTER),
            WindowKind.UNTIL_DAY_NEXT_MONTH: (1, _MAX_DAY_OF_MONTH),
        }[kind]
        if not low <= self.days <= high:
            raise ValueError(f"{kind.value} takes days from {low} to {high}, not {self.days}")


DEFAULT_POLICY = WindowPolicy(WindowKind.UNTIL_DAY_NEXT_MONTH, 3)

_POLICY_TEXT = re.compile(r"([a-z_]+):([0-9]{1,3})")


def serialize_policy(policy: WindowPolicy) -> str:
    """The column form: "until_day_next_month:3"."""
    return f"{policy.kind.value}:{policy.days}"


def parse_policy(text: str) -> WindowPolicy:
    """A policy from its column form; ValueError for anything else."""
    match = _POLICY_TEXT.fullmatch(text or "")
    if match is None:
        raise ValueError(f"not a window policy: {text!r}")
    return WindowPolicy(WindowKind(match.group(1)), int(match.group(2)))


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def window_end(sold_at: datetime, policy: WindowPolicy, tz: str = MEXICO_CITY) -> datetime:
    """The instant the window closes (exclusive): a local midnight, as an aware datetime in `tz`.

    `sold_at` must be aware (UTC from the database is fine).
    """
    _aware(sold_at, "sold_at")
    zone = ZoneInfo(tz)
    sale_day = sold_at.astimezone(zone).date()
    next_month = _first_of_next_month(sale_day)
    if policy.kind is WindowKind.SAME_MONTH:
        last_day = next_month
    elif policy.kind is WindowKind.DAYS_AFTER:
        last_day = sale_day + timedelta(days=policy.days + 1)
    else:
        last_day = min(next_month + timedelta(days=policy.days), _first_of_next_month(next_month))
    return datetime(last_day.year, last_day.month, last_day.day, tzinfo=zone)


def in_window(
    sold_at: datetime, now: datetime, policy: WindowPolicy, tz: str = MEXICO_CITY
) -> bool:
    """Whether a sale made at `sold_at` can still be invoiced at `now` (both aware).

    A `now` before the sale (a point-of-sale clock ahead of the server's) counts as inside.
    """
    _aware(now, "now")
    return now < window_end(sold_at, policy, tz)
