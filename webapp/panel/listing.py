"""An invoice list as the customer's panel shows it, shared with the issuer's list in the
back office (webapp.admin.invoices): the page, its results block or its next rows, and how
each invoice's state reads."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from flask import current_app, request, url_for
from flask_wtf import FlaskForm

from webapp.htmx import render
from webapp.issuing import retention
from webapp.models import Invoice
from webapp.panel import query

WARN_DAYS = 15  # the panel warns this many days before an invoice's files are archived


def state_of(invoice: Invoice) -> str:
    """vigente, cancelada or archivada, as the panel shows it."""
    if invoice.status.value == "cancelled":
        return "cancelada"
    return "archivada" if invoice.archived else "vigente"


def cancel_state(invoice: Invoice) -> str | None:
    """A valid invoice's cancellation request, as the list notes it: en_proceso (the
    receptor has not answered) or rechazada (the receptor refused; it stays valid)."""
    if invoice.status.value == "cancelled" or invoice.cancel_status is None:
        return None
    return {"pending": "en_proceso", "rejected": "rechazada"}.get(invoice.cancel_status.value)


def page_url(endpoint: str, **changes) -> str:
    """The list at `endpoint` with this request's query string changed by `changes` (a None
    value removes that key)."""
    args = request.args.to_dict()
    args.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        args.pop(key, None)
    return url_for(endpoint, **args)


def list_response(
    template: str,
    endpoint: str,
    filters: tuple[str, ...],
    form: FlaskForm,
    page: query.Page | None,
    status: int,
    **extra,
):
    """An invoice list (the customer's panel, the issuer's list in the back office): the full
    page, its results block (filters changed) or the next rows (Cargar más), by HX-Target."""
    target = request.headers.get("HX-Target", "")
    return render(
        template,
        "more" if target.startswith("mas") else "results",
        status,
        form=form,
        page=page,
        number=form.page_number(),
        page_size=query.PAGE_SIZE,
        filtered=any(request.args.get(name) for name in filters),
        more_filters=any(request.args.get(name) for name in filters[1:]) or form.errors,
        page_url=functools.partial(page_url, endpoint),
        state_of=state_of,
        cancel_state=cancel_state,
        days_left=days_left,
        warn_days=WARN_DAYS,
        **extra,
    )


def days_left(invoice: Invoice) -> int | None:
    return retention.days_left(invoice, current_app.config["RETENTION_DAYS"], datetime.now(UTC))
