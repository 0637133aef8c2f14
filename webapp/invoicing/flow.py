"""Where the customer is in the flow, kept in the signed session cookie.

Holds only what the customer typed or chose (branch, RFC, the tickets added so far, the
idempotency key of the invoice being prepared) and the invoices this browser generated, the
only ones it may see without an account.
"""

from __future__ import annotations

import secrets

from flask import session

KEY = "flow"
MINE = "mine"
MINE_MAX = 20


def get(slug: str) -> dict:
    flow = session.get(KEY)
    if not flow or flow.get("slug") != slug:
        flow = {"slug": slug, "tickets": []}
    return flow


def save(flow: dict) -> None:
    session[KEY] = flow


def new_key() -> str:
    return secrets.token_urlsafe(24)


def remember_invoice(public_id: str) -> None:
    mine = [p for p in session.get(MINE, []) if p != public_id]
    session[MINE] = ([public_id] + mine)[:MINE_MAX]


def owns(public_id: str) -> bool:
    return public_id in session.get(MINE, [])


def finish(slug: str) -> None:
    """The invoice is made: start afresh, keeping branch and RFC for the next ticket."""
    flow = get(slug)
    kept = {name: flow[name] for name in ("branch_id", "rfc", "id_type") if name in flow}
    save({"slug": slug, **kept, "tickets": []})
