"""Rate limits that a view counts itself, on flask-limiter's storage (shared by every process
when REDIS_URL is set, else per process).

The decorators of flask-limiter count every request of a view; some limits count only what a
request does: the emails it sends (each address one), the notice an address gets. `take`
counts against several limits at once, and never beyond them under parallel requests;
nothing is counted with RATELIMIT_ENABLED off. `bump`, `peek` and `forget` keep plain
counters that expire (e.g. the tickets not found in a browser session), in the same storage,
or in this process's memory with RATELIMIT_ENABLED off.

Should the shared storage be unreachable, each process counts on its own meanwhile.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask import current_app, session
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from webapp.extensions import limiter
from webapp.kiosk_context import current as on_kiosk

log = logging.getLogger(__name__)
SESSION_KEY = "limits"  # a random name for this browser session, in the session cookie

_memory: MemoryStorage | None = None  # this process's counts when the shared storage is not used


def enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def client_key() -> str:
    """Who is asking, for a per-IP limit: the kiosk terminal on a kiosk (a branch's kiosks
    share one public address, and the device cookie is checked against the kiosk's row on
    every request, so it cannot be made up), else the remote address."""
    kiosk = on_kiosk()
    return f"kiosk:{kiosk.id}" if kiosk is not None else f"ip:{get_remote_address()}"


def session_key() -> str:
    """This browser session (a kiosk's ends with each customer)."""
    name = session.get(SESSION_KEY)
    if not isinstance(name, str) or not name:
        name = session[SESSION_KEY] = secrets.token_urlsafe(12)
    return name


def _memory_storage() -> MemoryStorage:
    global _memory
    if _memory is None:
        _memory = MemoryStorage()
    return _memory


def _fallback_strategy() -> RateLimiter:
    return FixedWindowRateLimiter(_memory_storage())


def _prefixed(*parts: str) -> list[str]:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    return [p for p in (prefix, *parts) if p]


@dataclass(frozen=True)
class Limit:
    """The limits of the setting `setting` ("10/minute;60/hour"), counted for one key."""

    setting: str
    scope: str
    key: str


def _first_full(strategy: RateLimiter, counted, cost: int) -> Limit | None:
    """Test every limit first, so that a request that would not fit counts nothing (what
    still fits can be sent); then count it, each count one atomic increment of the storage:
    should a parallel request have taken the room meanwhile, the count says so and this one
    is refused too, so a limit never lets more through than it allows."""
    for limit, items, identifiers in counted:
        if not all(strategy.test(item, *identifiers, cost=cost) for item in items):
            return limit
    for limit, items, identifiers in counted:
        for item in items:
            if not strategy.hit(item, *identifiers, cost=cost):
                return limit
    return None


def take(*limits: Limit, cost: int = 1) -> Limit | None:
    """Count `cost` against every limit and answer None when all of them have room; else
    answer the first that is full (a request that does not fit counts nothing)."""
    if not enabled() or cost <= 0:
        return None
    counted = [
        (
            limit,
            parse_many(current_app.config[limit.setting]),
            _prefixed("view", limit.scope, limit.key),
        )
        for limit in limits
    ]
    try:
        return _first_full(limiter.limiter, counted, cost)
    except Exception:  # the shared storage is unreachable (or was never set up)
        log.warning("rate-limit storage unreachable: counting in this process", exc_info=True)
        return _first_full(_fallback_strategy(), counted, cost)


def _on_storage(operation):
    if enabled():
        try:
            return operation(limiter.storage)
        except Exception:  # the shared storage is unreachable (or was never set up)
            log.warning("rate-limit storage unreachable: counting in this process", exc_info=True)
    return operation(_memory_storage())


def _counter(scope: str, key: str) -> str:
    return "/".join(_prefixed("count", scope, key))


def bump(scope: str, key: str, seconds: int) -> int:
    """Add one to the counter (`scope`, `key`), which ends `seconds` after its first count;
    its new value."""
    return _on_storage(lambda storage: storage.incr(_counter(scope, key), seconds))


def peek(scope: str, key: str) -> int:
    return _on_storage(lambda storage: storage.get(_counter(scope, key)))


def forget(scope: str, key: str) -> None:
    _on_storage(lambda storage: storage.clear(_counter(scope, key)))
