"""Views of the flow: thin, the checks live in forms.py and the work in webapp.issuing."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy import and_, bindparam, select

from webapp.extensions import db
from webapp.fiscal.ticket_input import normalize_number
from webapp.htmx import forward, is_htmx, redirect_any, render
from webapp.invoicing import bp, flow, guard, profile
from webapp.invoicing.forms import (
    TICKET_FIELDS,
    BranchForm,
    EmailForm,
    IdentificationForm,
    RfcForm,
    TicketForm,
    buyer_fields,
    check_buyer_fields,
    check_identification_form,
    check_rfc_form,
    check_ticket_fields,
    is_ec,
    show,
    ticket_form,
)
from webapp.invoicing.messages import NO_TICKETS
from webapp.issuing import credits, issue, retention
from webapp.issuing.lookup import TicketProblem
from webapp.kiosk_context import current as on_kiosk
from webapp.models import Branch, Invoice, InvoiceStatus, Issuer, Ticket
from webapp.security.web import cookie_options
from webapp.services.stamping import Result, filename, files_with_pdf
from webapp.sri import catalogs as sri_catalogs
from webapp.wiring import queue_invoice_mail, stamping

BRANCH_COOKIE = "sucursal_{}"
RESEND_INTERVAL_SECONDS = 600


def _now() -> datetime:
    return datetime.now(UTC)


PLACE = "invoicing_place"  # on `g`: what _place read for this request


def _branch_id(state: dict) -> int:
    """The branch this request invoices at: the kiosk's, whatever the session says, or the
    one chosen in the flow (0: none)."""
    kiosk = on_kiosk()
    return (kiosk.branch_id if kiosk else state.get("branch_id")) or 0


# Built once: building a statement and its cache key costs more than running it on SQLite.
PLACE_QUERY = (
    select(Issuer, Branch)
    .outerjoin(
        Branch,
        and_(Branch.issuer_id == Issuer.id, Branch.id == bindparam("branch_id"), Branch.active),
    )
    .where(Issuer.slug == bindparam("slug"))
)


def _place(slug: str) -> tuple[Issuer | None, Branch | None]:
    """The issuer of `slug` and, in the same query, the branch of this flow (None unless it
    is an active branch of that issuer). Read once per request: the guest check and the view
    share it."""
    key = (slug, _branch_id(flow.get(slug)))
    cached = g.get(PLACE)
    if cached is not None and cached[0] == key:
        return cached[1]
    row = db.session.execute(PLACE_QUERY, {"slug": slug, "branch_id": key[1]}).first()
    place = (row[0], row[1]) if row is not None else (None, None)
    setattr(g, PLACE, (key, place))
    return place


def _issuer(slug: str) -> Issuer:
    issuer = _place(slug)[0]
    if issuer is None or issuer.kind != "retail":  # a services issuer bills, it sells no tickets
        abort(404)
    if issuer.onboarding_pending:  # not offered to customers until its checklist is done
        abort(404)
    return issuer


def _active_branches(issuer: Issuer) -> list[Branch]:
    return [b for b in issuer.branches if b.active]


def _flow_branch(issuer: Issuer, state: dict) -> Branch | None:
    branch_id = _branch_id(state)
    cached = g.get(PLACE)
    if cached is not None and cached[0] == (issuer.slug, branch_id):
        return cached[1][1]  # read with the issuer
    branch = db.session.get(Branch, branch_id)
    return branch if branch and branch.issuer_id == issuer.id and branch.active else None


@bp.before_request
def _guests_allowed():
    """An issuer without guest invoicing asks the web's customers to sign in first (kiosks
    have no accounts: they always invoice as guests). What it reads, the view reuses."""
    g.pop(PLACE, None)  # `g` outlives a request when a test pushes an app context around it
    slug = (request.view_args or {}).get("slug")
    if slug is None or current_user.is_authenticated or on_kiosk() is not None:
        return None
    issuer = _place(slug)[0]
    if issuer is None or issuer.guest_invoicing:
        return None
    flash(
        _(
            "%(issuer)s factura sólo a clientes con cuenta. Entre con su RFC o correo, o "
            "regístrese, y después facture su ticket.",
            issuer=issuer.legal_name,
        )
    )
    back = url_for(".branch", slug=slug) if request.method == "POST" else request.full_path
    return redirect_any(url_for("accounts.sign_in", next=back.rstrip("?")))


# The RFC step of an Ecuadorian issuer asks the buyer's tipo de identificación and number
# instead (IdentificationForm): kept as state["rfc"] and state["id_type"], the rest of the flow
# reads them as it reads the RFC.


def _id_form(issuer: Issuer, **kwargs) -> RfcForm | IdentificationForm:
    return IdentificationForm(**kwargs) if is_ec(issuer) else RfcForm(**kwargs)


def _id_field(issuer: Issuer) -> str:
    """The field whose presence in a POST says the RFC step's data came with it."""
    return "identificacion" if is_ec(issuer) else "rfc"


def _fill_id(issuer: Issuer, form, state: dict) -> None:
    if is_ec(issuer):
        form.id_type.data, form.identificacion.data = state.get("id_type"), state.get("rfc")
    else:
        form.rfc.data = state.get("rfc")


def _check_id(issuer: Issuer, form) -> tuple[str, str] | None:
    """(identification, tipo) as typed in the RFC step, checked; None with the problems on
    the form. A Mexican RFC has no tipo ("")."""
    if is_ec(issuer):
        return check_identification_form(form)
    value = check_rfc_form(form)
    return None if value is None else (value, "")


def _store_id(state: dict, value: tuple[str, str]) -> None:
    """Keep the identification; the tickets added so far were looked up for another one."""
    if (state.get("rfc"), state.get("id_type", "")) != value:
        state["tickets"] = []
    state["rfc"], state["id_type"] = value


def _identification(state: dict) -> tuple[str, str]:
    return state["rfc"], state.get("id_type", "")


@bp.get("/")
def start():
    issuers = db.session.scalars(
        select(Issuer)
        .where(Issuer.kind == "retail", Issuer.onboarding_pending.is_(False))
        .order_by(Issuer.legal_name)
    ).all()
    if len(issuers) == 1:
        return redirect(url_for(".branch", slug=issuers[0].slug), 303)
    return render_template("invoicing/start.html", issuers=issuers)


@bp.route("/<slug>/", methods=["GET", "POST"])
def branch(slug: str):
    """The branch, and on the same page the RFC: one POST takes the customer to the ticket
    step (a remembered branch comes checked, so a returning customer only types the RFC). A
    POST without the RFC field (the branch alone) takes them to the RFC step."""
    issuer = _issuer(slug)
    kiosk = on_kiosk()
    if kiosk is not None:  # the kiosk's branch is fixed: no branch step
        if kiosk.branch.issuer_id == issuer.id:
            return redirect(url_for(".rfc", slug=slug), 303)
        return redirect(url_for("kiosk.start"), 303)
    branches = _active_branches(issuer)
    form = BranchForm()
    form.branch.choices = [(str(b.id), b.name) for b in branches]
    rfc_form = _id_form(issuer)
    state = flow.get(slug)
    if request.method == "GET":
        remembered = state.get("branch_id") or request.cookies.get(BRANCH_COOKIE.format(slug))
        form.branch.data = str(remembered) if remembered else None
        _fill_id(issuer, rfc_form, state)
    elif form.validate_on_submit():
        chosen = next((b for b in branches if str(b.id) == form.branch.data), None)
        if chosen is None:
            form.branch.errors = [_("Elija la sucursal donde compró.")]
        alone = _id_field(issuer) not in request.form  # the branch alone: the RFC comes next
        value = None if alone else _check_id(issuer, rfc_form)
        if chosen is not None and (alone or value is not None):
            if chosen.id != state.get("branch_id"):
                state["tickets"] = []  # tickets are looked up in a branch, for an RFC
            state["branch_id"] = chosen.id
            if value:
                _store_id(state, value)
            flow.save(state)
            response = _rfc_step(issuer, state, chosen) if alone else _ticket_step(slug)
            response.set_cookie(
                BRANCH_COOKIE.format(slug),
                str(chosen.id),
                max_age=365 * 86400,
                **cookie_options(),
            )
            return response
    page = render_template("invoicing/branch.html", issuer=issuer, form=form, rfc_form=rfc_form)
    if request.method == "GET":
        return page
    status = 422 if form.branch.errors or any(f.errors for f in rfc_form) else 200
    return forward(page, status, url_for(".branch", slug=slug))


def _rfc_step(issuer: Issuer, state: dict, branch: Branch) -> Response:
    """The RFC step as the branch step's POST answers it (the field ready to type in)."""
    form = _id_form(issuer, formdata=None)
    _fill_id(issuer, form, state)
    first = form.id_type if is_ec(issuer) else form.rfc
    first.render_kw = {**(first.render_kw or {}), "autofocus": True}
    page = render_template("invoicing/rfc.html", issuer=issuer, branch=branch, form=form)
    return forward(page, 200, url_for(".rfc", slug=issuer.slug))


@bp.route("/<slug>/rfc", methods=["GET", "POST"])
def rfc(slug: str):
    issuer = _issuer(slug)
    form = _id_form(issuer)
    target = request.headers.get("HX-Target") if is_htmx() else None
    if target == "campo-rfc" and not is_ec(issuer):
        # Inline validation, from this step or the branch step (no branch chosen yet).
        if form.validate_on_submit():
            check_rfc_form(form)
        return render("invoicing/rfc.html", "rfc_field", issuer=issuer, form=form)
    if target in ("campo-id_type", "campo-identificacion") and is_ec(issuer):
        return _identification_inline(issuer, form, target[len("campo-") :])
    state = flow.get(slug)
    branch = _flow_branch(issuer, state)
    if branch is None:
        return redirect(url_for(".branch", slug=slug), 303)
    if request.method == "GET":
        _fill_id(issuer, form, state)
    elif form.validate_on_submit():
        value = _check_id(issuer, form)
        if value is not None:
            _store_id(state, value)
            flow.save(state)
            return _ticket_step(slug)
    page = render_template("invoicing/rfc.html", issuer=issuer, branch=branch, form=form)
    if request.method == "GET":
        return page
    return forward(page, _status(form), url_for(".rfc", slug=slug))


def _identification_inline(issuer: Issuer, form: IdentificationForm, name: str) -> Response:
    """An Ecuadorian RFC step's field checked inline: the tipo, or the identification (as
    the full submit checks it); a new tipo also refreshes the identification's verdict, out of
    band. Nothing typed yet: no message."""
    typed = bool(form.identificacion.data)
    if form.validate_on_submit():
        check_identification_form(form)
    if not typed and form.id_type.data != sri_catalogs.CONSUMIDOR_FINAL:
        form.identificacion.errors = []
    if name == "id_type" and not form.id_type.data:
        form.id_type.errors = []
    template = "invoicing/_id_fields.html"
    response = render(template, f"field_{name}", issuer=issuer, form=form)
    if name == "id_type":
        oob = render_block(template, "field_identificacion", issuer=issuer, form=form, id_oob=True)
        response.set_data(response.get_data(as_text=True).strip() + "\n" + oob.strip())
    return response


def _status(form) -> int:
    return 422 if form.errors or any(f.errors for f in form) else 200


ADDED_QUERY = select(Ticket).where(Ticket.id.in_(bindparam("ids", expanding=True)))


def _tickets(ids: list[int]) -> list[Ticket]:
    """The tickets added so far, in the order they were added, in one query."""
    if not ids:
        return []
    found = {t.id: t for t in db.session.scalars(ADDED_QUERY, {"ids": ids})}
    return [found[i] for i in ids if i in found]


def _ticket_context(slug: str, *, inline: bool = False):
    """The ticket step's state and its form with the choices this RFC allows; None when the
    customer has not chosen a branch and an RFC yet. `inline`: for a field's inline check,
    whose answer holds no form (the app's CSRF check has passed the request): no token made."""
    issuer = _issuer(slug)
    state = flow.get(slug)
    branch = _flow_branch(issuer, state)
    if branch is None or not state.get("rfc") or (is_ec(issuer) and not state.get("id_type")):
        return None
    added = _tickets(state["tickets"])
    form = ticket_form(issuer, meta={"csrf": False}) if inline else ticket_form(issuer)
    form.fill_choices(issuer, state["rfc"])
    return issuer, state, branch, added, form


def _buyer_context(issuer: Issuer, state: dict) -> dict:
    """What the ticket step's template says of the customer: the RFC, or the Ecuadorian
    buyer's identification and its tipo."""
    id_type = state.get("id_type", "")
    return dict(
        rfc=state["rfc"],
        ec=is_ec(issuer),
        id_type=id_type,
        id_type_label=sri_catalogs.TIPOS_IDENTIFICACION.get(id_type, ""),
        consumidor_final=is_ec(issuer) and id_type == sri_catalogs.CONSUMIDOR_FINAL,
        consumidor_final_limit=sri_catalogs.CONSUMIDOR_FINAL_LIMITE,
    )


def _ticket_page(issuer, state, branch, added, form, status=200, resend=None, captcha_errors=()):
    return render_template(
        "invoicing/ticket.html",
        issuer=issuer,
        branch=branch,
        form=form,
        added=added,
        resend=resend,
        captcha_token=guard.captcha_token(),
        captcha_errors=list(captcha_errors),
        **_buyer_context(issuer, state),
    ), status


def _new_ticket_page(issuer, state, branch, added, form, first_field: bool = False):
    """The ticket step as it opens: a new idempotency key, the signed-in customer's saved
    data, the forma de pago of the tickets added, what a kiosk sent to this phone."""
    form.key.data = flow.new_key()
    if not is_ec(issuer):  # a profile keeps a Mexican receptor's data
        profile.fill(form, state["rfc"])
    form.fill_choices(issuer, state["rfc"])  # the usos of the saved régimen
    form.preselect_forma_pago(issuer, added)
    if prefill := state.pop("prefill", None):  # sent from a kiosk to this phone
        for name in TICKET_FIELDS:
            form[name].data = str(prefill.get(name) or "")
        flow.save(state)
    if first_field:  # reached by a step's POST: the cursor where the customer types next
        field = form.order_number
        field.render_kw = {**(field.render_kw or {}), "autofocus": True}
    return _ticket_page(issuer, state, branch, added, form)


def _ticket_step(slug: str) -> Response:
    """The ticket step as the branch or RFC step's POST answers it, at the address of the
    ticket step for htmx (`forward`). A kiosk keeps no history entry of a customer's step: its
    back button leaves the page for the one before, which is asked for again."""
    context = _ticket_context(slug)
    if context is None:  # the branch went inactive in between
        return redirect(url_for(".branch", slug=slug), 303)
    issuer, state, branch, added, _posted = context
    form = ticket_form(issuer, formdata=None)  # not the step's POST: the form as it opens
    form.fill_choices(issuer, state["rfc"])
    body, status = _new_ticket_page(issuer, state, branch, added, form, first_field=True)
    return forward(body, status, None if on_kiosk() else url_for(".ticket", slug=slug))


def _refused_lookup(form) -> bool:
    """A lookup while the captcha is due, without it solved (checked before anything is
    looked up or written)."""
    typed = bool(normalize_number(form.ticket_number.data or ""))
    return typed and guard.captcha_due() and not guard.captcha_solved()


@bp.route("/<slug>/ticket", methods=["GET", "POST"])
@guard.ticket_ip_limit
@guard.ticket_branch_limit
def ticket(slug: str):
    context = _ticket_context(slug)
    if context is None:
        return redirect(url_for(".branch", slug=slug), 303)
    issuer, state, branch, added, form = context
    if request.method == "GET":
        return _new_ticket_page(issuer, state, branch, added, form)
    if not form.validate_on_submit():
        return _ticket_page(issuer, state, branch, added, form, 400)
    action = request.form.get("action", "generate")
    done = issue.by_key(db.session, form.key.data or "")
    if done is not None and not _same_request(done, state, form):
        # A key from an earlier form (the back button, a kiosk's next customer) that made
        # another invoice: this is a new request, with a new key.
        form.key.data, done = flow.new_key(), None
    if action == "generate" and done is not None:
        # A double submit or another tab of the same form (the key is the form's secret):
        # the same answer as the first request.
        flow.remember_invoice(done.public_id)
        return _stamp_and_show(issuer, done)
    if action.startswith("remove-"):
        state["tickets"] = [i for i in state["tickets"] if str(i) != action[7:]]
        flow.save(state)
        return redirect(url_for(".ticket", slug=slug), 303)
    if _refused_lookup(form):
        return _ticket_page(
            issuer, state, branch, added, form, 422, captcha_errors=[guard.CAPTCHA_MESSAGE]
        )
    ids = frozenset(state["tickets"])
    outcome = check_ticket_fields(
        form, db.session, branch, _now(), ids, required=action == "add" or not ids
    )
    guard.note(outcome)
    if action == "add":
        show(form, outcome.errors, TICKET_FIELDS)
        if outcome.ok and outcome.check:
            state["tickets"].append(outcome.check.ticket.id)
            flow.save(state)
            for name in TICKET_FIELDS:
                form[name].data = ""
            added.append(outcome.check.ticket)
            form.preselect_forma_pago(issuer, added)
            return _ticket_page(issuer, state, branch, added, form)
        return _ticket_page(issuer, state, branch, added, form, 422, resend=_resend_offer(outcome))
    check_buyer_fields(form, _identification(state), issuer, outcome, added)
    show(form, outcome.errors)
    found = outcome.check.ticket if outcome.check else None
    ticket_ids = list(ids) + ([found.id] if found else [])
    if not outcome.ok or not ticket_ids:
        done = issue.by_key(db.session, form.key.data or "")
        if done is not None and _same_request(done, state, form):
            # Another press of this same form reserved the ticket while this one was being
            # checked ("ya fue facturado" by this very form): the same answer as that press.
            flow.remember_invoice(done.public_id)
            return _stamp_and_show(issuer, done)
        if not ticket_ids and "ticket_number" not in outcome.errors:
            form.ticket_number.errors = [NO_TICKETS]
        return _ticket_page(issuer, state, branch, added, form, 422, resend=_resend_offer(outcome))
    return _generate(issuer, state, branch, form, outcome, ticket_ids, added)


def _same_request(invoice: Invoice, state: dict, form: TicketForm) -> bool:  # or EcTicketForm
    """Whether `invoice` is what this form asks for: same RFC, same tickets."""
    held = {t.ticket_number for t in invoice.tickets}
    typed = normalize_number(form.ticket_number.data or "")
    added = {t.ticket_number for t in (db.session.get(Ticket, i) for i in state["tickets"]) if t}
    return invoice.receptor_rfc == state["rfc"] and held == added | ({typed} if typed else set())


def _resend_offer(outcome) -> Ticket | None:
    """The ticket, when it is already invoiced and the customer proved they hold it."""
    check = outcome.check
    if check and check.problems.get("ticket_number") is TicketProblem.ALREADY_INVOICED:
        return check.ticket
    return None


def _generate(issuer, state, branch, form, outcome, ticket_ids, added):
    request_ = issue.Request(
        branch_id=branch.id,
        ticket_ids=ticket_ids,
        receptor=outcome.receptor,
        forma_pago=form.forma_pago.data,
        email=outcome.email,
        idempotency_key=form.key.data or flow.new_key(),
        account_id=current_user.account.id if current_user.is_authenticated else None,
    )
    stamped = stamping().issue(db.session, request_, issuer, _now())
    if stamped.result is Result.TAKEN:
        form.ticket_number.errors = [
            _("Uno de los tickets acaba de facturarse. Revise la lista e intente de nuevo.")
        ]
        return _ticket_page(issuer, state, branch, added, form, 409)
    if stamped.invoice is not None:
        flow.remember_invoice(stamped.invoice.public_id)
        if not is_ec(issuer):
            profile.remember(outcome.receptor, outcome.email)
    return _show(issuer, stamped)


def _stamp_and_show(issuer, invoice):
    """A second press of a form whose invoice exists: the same answer as the first."""
    return _show(issuer, stamping().finish(db.session, invoice))


def _show(issuer, stamped):
    """The page of a stamping's outcome: the invoice (or the page that waits for it), or
    why it could not be made."""
    retry = url_for(".ticket", slug=issuer.slug)
    if stamped.result is Result.UNAVAILABLE:
        # The merchant's account with the platform (no stamp credits, licence expired): a
        # refusal of this merchant, not a failure of the service.
        closed = stamped.code in credits.CODES
        page = render_template(
            "invoicing/failed.html", issuer=issuer, unavailable=True, closed=closed, retry=retry
        )
        return page, 409 if closed else 503
    if stamped.result is Result.REFUSED:
        return render_template(
            "invoicing/failed.html", issuer=issuer, error=stamped.reason, retry=retry
        ), 502
    flow.finish(issuer.slug)
    url = url_for(".invoice", public_id=stamped.invoice.public_id)
    if not is_htmx():
        return redirect(url, 303)  # a reload must not generate again
    # htmx: the invoice's page itself, at its own address (HX-Push-Url), so that a reload or
    # the back button asks for it with a GET and nothing is posted twice.
    body, status = _invoice_page(stamped.invoice)
    return forward(body, status, url)


def _invoice_page(invoice):
    """The whole page of a stamped invoice, or the one that waits for it."""
    if invoice.status in issue.PENDING:
        page = render_template("invoicing/pending.html", invoice=invoice, wait=WAIT_REFRESH_SECONDS)
        return page, 202
    form = EmailForm(email=invoice.delivery_email)
    page = render_template(
        "invoicing/result.html", invoice=invoice, email_form=form, sent=request.args.get("enviada")
    )
    return page, 200


@bp.post("/<slug>/ticket/campo/<name>")
@guard.ticket_ip_limit
@guard.ticket_branch_limit
def field(slug: str, name: str):
    """Inline validation: the field's wrapper re-rendered with the full submit's checks."""
    context = _ticket_context(slug, inline=True)
    if context is None:
        abort(409)
    issuer, state, branch, added, form = context
    if name not in TICKET_FIELDS + buyer_fields(issuer) + ("forma_pago",):
        abort(404)
    ids = frozenset(state["tickets"])
    # Only a ticket field's check looks the ticket up, and not while the captcha is due (the
    # submit asks for it then).
    due = guard.captcha_due()
    lookup = name in TICKET_FIELDS and not due
    outcome = check_ticket_fields(
        form, db.session, branch, _now(), ids, required=not ids, lookup=lookup
    )
    if lookup:
        guard.note(outcome)
    check_buyer_fields(form, _identification(state), issuer, outcome, added)
    typed = bool(form[name].data)
    if typed:
        show(form, outcome.errors, (name,))
    # 200 even with a problem: the fragment is the validation's answer, not a failed request
    # (browsers log 4xx responses as console errors); the full submit answers 422.
    context = dict(
        issuer=issuer,
        branch=branch,
        form=form,
        added=added,
        resend=_resend_offer(outcome) if name in TICKET_FIELDS else None,
        **_buyer_context(issuer, state),
    )
    response = render("invoicing/ticket.html", f"field_{name}", **context)
    if name == "regimen":  # the usos allowed depend on the régimen: refresh that list too
        oob = render_block("invoicing/ticket.html", "field_uso_cfdi", uso_oob=True, **context)
        response.set_data(response.get_data(as_text=True).strip() + "\n" + oob.strip())
    elif not due and guard.captcha_due():  # this answer made it due: the form shows it now
        oob = render_block(
            "invoicing/ticket.html",
            "captcha",
            captcha_oob=True,
            captcha_token=guard.captcha_token(),
            **context,
        )
        response.set_data(response.get_data(as_text=True).strip() + "\n" + oob.strip())
    return response


@bp.post("/<slug>/reenviar")
@guard.ticket_ip_limit
@guard.ticket_branch_limit
def resend(slug: str):
    """Send an already invoiced ticket's invoice again to the address it was sent to,
    for whoever proves they hold the ticket (branch, order number, ticket number, total)."""
    context = _ticket_context(slug)
    if context is None:
        return redirect(url_for(".branch", slug=slug), 303)
    issuer, state, branch, added, form = context
    if not form.validate_on_submit():
        abort(400)
    if _refused_lookup(form):
        return _ticket_page(
            issuer, state, branch, added, form, 422, captcha_errors=[guard.CAPTCHA_MESSAGE]
        )
    outcome = check_ticket_fields(form, db.session, branch, _now(), frozenset(), True)
    guard.note(outcome)
    ticket = _resend_offer(outcome)
    if ticket is None:
        show(form, outcome.errors, TICKET_FIELDS)
        return _ticket_page(issuer, state, branch, added, form, 422)
    invoice = db.session.scalar(
        select(Invoice)
        .join(Invoice.tickets)
        .where(Ticket.id == ticket.id, Invoice.status == InvoiceStatus.STAMPED)
    )
    now = _now()
    if (
        invoice is not None
        and invoice.delivery_email
        and (
            invoice.last_sent_at is None
            or (now - invoice.last_sent_at).total_seconds() > RESEND_INTERVAL_SECONDS
        )
    ):
        if refusal := guard.mail_refusal(invoice, 1):
            form.ticket_number.errors = [refusal]
            return _ticket_page(issuer, state, branch, added, form, 429)
        queue_invoice_mail(db.session, invoice, invoice.delivery_email)
        invoice.last_sent_at = now
        db.session.commit()
    return render_template("invoicing/resent.html", issuer=issuer)


def _own_invoice(public_id: str, *, stamped: bool = True) -> Invoice:
    if not flow.owns(public_id):
        abort(404)
    invoice = db.session.scalar(select(Invoice).where(Invoice.public_id == public_id))
    if invoice is None or (stamped and invoice.status is not InvoiceStatus.STAMPED):
        abort(404)
    return invoice


WAIT_REFRESH_SECONDS = 3


@bp.get("/factura/<public_id>")
def invoice(public_id: str):
    """The invoice; while it is still on its way to the PAC, a page that waits for it
    (refreshing by itself, and polled by htmx), or why it could not be made."""
    invoice = _own_invoice(public_id, stamped=False)
    stamping().settle_if_left(db.session, invoice, _now())  # its process may be gone
    if invoice.status in issue.PENDING:
        return render(
            "invoicing/pending.html", "waiting", 202, invoice=invoice, wait=WAIT_REFRESH_SECONDS
        )
    if invoice.status is InvoiceStatus.FAILED:
        retry = url_for(".ticket", slug=invoice.issuer.slug)
        return render_template(
            "invoicing/failed.html", issuer=invoice.issuer, error=invoice.error, retry=retry
        ), 502
    if invoice.status is not InvoiceStatus.STAMPED:
        abort(404)
    if is_htmx() and request.headers.get("HX-Target") == "esperando":  # the wait is over
        return redirect_any(url_for(".invoice", public_id=public_id))
    return _invoice_page(invoice)


@bp.get("/factura/<public_id>.<any(xml, pdf):ext>")
def download(public_id: str, ext: str):
    invoice = _own_invoice(public_id)
    if ext == "xml":
        body = retention.files_of(db.session, invoice).xml
    else:  # rendered on the first download, then kept
        body = files_with_pdf(db.session, invoice).pdf
    if body is None:
        abort(404)
    mimetype = "application/xml" if ext == "xml" else "application/pdf"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename(invoice, ext)}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/factura/<public_id>/correo")
def email(public_id: str):
    invoice = _own_invoice(public_id)
    form = EmailForm()
    status = 422
    if form.validate_on_submit():
        if refusal := guard.mail_refusal(invoice, len(form.addresses)):
            form.email.errors = [refusal]
            status = 429
        else:
            queue_invoice_mail(db.session, invoice, form.addresses)
            invoice.last_sent_at = _now()
            db.session.commit()
            return redirect(url_for(".invoice", public_id=public_id, enviada=1), 303)
    return render_template("invoicing/result.html", invoice=invoice, email_form=form), status
