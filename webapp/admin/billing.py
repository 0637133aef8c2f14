"""Back office: the billing runs of a services issuer (/admin/servicios/facturacion).

The page lists the issuer's runs with their progress, and "Generar facturas del periodo"
starts the run of the chosen month in a thread of this web process (webapp.billing.run does
the work, in an app context and a session of its own), then 303s to the run's page: a
<progress> bar refreshed by htmx every POLL_SECONDS (a <noscript> meta refresh without
JavaScript) until the run finishes. A run whose heartbeat went stale (its process died) is
resumed by pressing the button again; one still running is not started twice (and should two
processes start it at once, the database's one bill per account and period keeps them from
doubling anything). Issuer admins and the operator; services issuers only.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime

from flask import Flask, abort, current_app, redirect, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField
from wtforms.validators import InputRequired, ValidationError

from webapp.admin import bp, scope
from webapp.admin.auth import staff_required
from webapp.billing import run as billing
from webapp.extensions import db
from webapp.htmx import render
from webapp.models import BillingRun, Issuer, StaffRole

log = logging.getLogger(__name__)

ADMIN = StaffRole.ISSUER_ADMIN
POLL_SECONDS = 2
MONTHS_OFFERED = 12
LIST_LIMIT = 24

ERRORS = {
    "bad_period": _l("Elija un periodo de la lista."),
    "future_period": _l("Ese periodo aún no empieza."),
    "not_services": _l("Este emisor no factura servicios."),
    "unsupported_country": _l("Aún no se emiten facturas de servicios en el país de este emisor."),
}


def _now() -> datetime:
    return datetime.now(UTC)


def _months(today: date) -> list[str]:
    """The periods offered: the current month and the MONTHS_OFFERED - 1 before it."""
    year, month = today.year, today.month
    periods = []
    for _ in range(MONTHS_OFFERED):
        periods.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return periods


class RunForm(FlaskForm):
    period = SelectField(
        _l("Periodo"),
        validators=[InputRequired(message=ERRORS["bad_period"])],
        validate_choice=False,
        render_kw={"required": False},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        months = _months(billing.local_today(_now()))
        self.period.choices = [(p, p) for p in months]
        if not self.period.data or self.period.data == "None":
            self.period.data = months[1]  # the last month: every corte of it is over

    def validate_period(self, field) -> None:
        if field.data not in {value for value, _ in field.choices}:
            raise ValidationError(str(ERRORS["bad_period"]))


def _services_issuer() -> Issuer:
    issuer = scope.issuer()
    if issuer.kind != "services":
        abort(404)
    return issuer


def _runs(issuer: Issuer) -> list[BillingRun]:
    return list(
        db.session.scalars(
            select(BillingRun)
            .where(BillingRun.issuer_id == issuer.id)
            .order_by(BillingRun.period.desc())
            .limit(LIST_LIMIT)
        )
    )


def _page(form: RunForm, status: int = 200, error: str | None = None):
    issuer = scope.issuer()
    services = issuer.kind == "services"
    return render(
        "admin/billing_runs.html",
        "content",
        status,
        form=form,
        error=error,
        services=services,
        runs=_runs(issuer) if services else [],
        running=billing.is_running,
        now=_now(),
    )


@bp.get("/servicios/facturacion")
@staff_required(ADMIN)
def billing_runs():
    if scope.issuer_or_none() is None:  # the operator has not picked an issuer yet
        return redirect(url_for("admin.issuers"), 303)
    return _page(RunForm(formdata=None))


@bp.post("/servicios/facturacion")
@staff_required(ADMIN)
def billing_start():
    issuer = _services_issuer()
    form = RunForm()
    if not form.validate_on_submit():
        return _page(form, 422)
    period, now = form.period.data, _now()
    try:
        billing.check(issuer, period, now)
    except billing.BillingError as problem:
        return _page(form, 422, error=str(ERRORS.get(problem.code, ERRORS["bad_period"])))
    found = billing.find_run(db.session, issuer.id, period)
    if found is None or not billing.is_running(found, now):
        # Marked as running here, so a second press before the thread's first beat (or the
        # page it is sent to) sees it running.
        billing.start_run(db.session, issuer.id, period)
        start_in_background(current_app._get_current_object(), issuer.id, period)  # type: ignore[attr-defined]
    return redirect(url_for("admin.billing_run", period=period), 303)


@bp.get("/servicios/facturacion/<period>")
@staff_required(ADMIN)
def billing_run(period: str):
    issuer = _services_issuer()
    found = billing.find_run(db.session, issuer.id, period)
    if found is None:
        abort(404)
    now = _now()
    return render(
        "admin/billing_run.html",
        "progress",
        run=found,
        running=billing.is_running(found, now),
        stale=found.finished_at is None and not billing.is_running(found, now),
        poll=POLL_SECONDS,
        form=RunForm(formdata=None, period=period),
    )


# --- The run's thread ---------------------------------------------------------------------------


def start_in_background(app: Flask, issuer_id: int, period: str) -> threading.Thread:
    """Run the billing of `period` in a thread of this process, in an app context (and so a
    session) of its own."""
    thread = threading.Thread(
        target=_work,
        args=(app, issuer_id, period),
        name=f"billing-{issuer_id}-{period}",
        daemon=True,
    )
    thread.start()
    return thread


def _work(app: Flask, issuer_id: int, period: str) -> None:
    with app.app_context():
        session = db.session
        try:
            issuer = session.get(Issuer, issuer_id)
            billing.run(session, app.extensions["stamping"], issuer, period, _now())
        except Exception:  # noqa: BLE001 - a thread has no one to tell but the log and the row
            log.exception("billing run of issuer %s, %s, stopped", issuer_id, period)
