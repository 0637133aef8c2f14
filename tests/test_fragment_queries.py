"""The ticket step's inline validation does the least work a check needs: the issuer and the
branch read together once (the guest check and the view share them), the ticket looked up in
one query, the tickets already added in one more; WTForms' messages and the flow's fields
rendered as WTForms renders them, from what each process keeps."""

from __future__ import annotations

import contextlib
import re

import pytest
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import event, select
from wtforms import StringField, widgets
from wtforms.validators import DataRequired
from wtforms.widgets.core import html_params as wtforms_html_params

from tests.flows import (
    PASSWORD,
    RECEPTOR,
    RFC,
    enrol,
    sign_in,
    start,
    ticket_data,
    verified_account,
)
from webapp.extensions import db
from webapp.invoicing import widgets as fast
from webapp.invoicing.forms import TicketForm
from webapp.models import Issuer

HX = {"HX-Request": "true"}


@contextlib.contextmanager
def statements(app):
    """The SQL statements sent to the database meanwhile."""
    seen: list[str] = []

    def listen(conn, cursor, statement, *args) -> None:
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def _from(table: str, seen: list[str]) -> list[str]:
    return [s for s in seen if re.search(rf"\bFROM {table}\b", s)]


def _check(client, name: str, data: dict):
    r = client.post(f"/facturar/demo/ticket/campo/{name}", data=data, headers=HX)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_data(as_text=True)


def test_a_ticket_field_is_checked_with_two_queries(app, client, demo):
    """One for the issuer and the branch (joined), one for the ticket; nothing else."""
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    _check(client, "total", ticket_data(t, key))  # the process's first check warms it
    with statements(app) as seen:
        body = _check(client, "total", ticket_data(t, key))
    assert "field-error" not in body and 'id="campo-total"' in body
    assert len(seen) == 2, seen
    place, ticket = seen
    assert "FROM issuer LEFT OUTER JOIN branch" in place
    assert re.search(r"\bFROM ticket\b", ticket)


def test_a_wrong_ticket_is_told_with_the_same_two_queries(app, client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with statements(app) as seen:
        body = _check(client, "total", ticket_data(t, key, total="1.00"))
    assert 'class="field invalid" id="campo-total"' in body
    assert len(seen) == 2, seen


@pytest.mark.parametrize("name", ["nombre", "cp", "regimen", "uso_cfdi", "email", "forma_pago"])
def test_other_fields_are_checked_with_one_query(app, client, demo, name):
    """They tell nothing about the ticket: it is not looked up."""
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with statements(app) as seen:
        _check(client, name, ticket_data(t, key))
    assert len(seen) == 1 and _from("issuer", seen) == seen, seen


def test_the_tickets_already_added_are_read_in_one_query(app, client, demo):
    first, second, third = demo["fresh"]
    key = start(client, first["branch_id"])
    for t in (first, second):
        r = client.post("/facturar/demo/ticket", data=ticket_data(t, key, action="add"))
        assert r.status_code == 200 and "Tickets en esta factura" in r.get_data(as_text=True)
    with statements(app) as seen:
        body = _check(client, "total", ticket_data(third, key))
    assert "field-error" not in body
    assert len(seen) == 3, seen  # issuer and branch, the two added tickets, the one typed
    assert len(_from("ticket", seen)) == 2


def test_a_signed_in_customer_s_check_reads_the_issuer_once(app, client, demo):
    """The guest check is skipped for a customer with an account; the view still reads the
    issuer once, with the branch."""
    with app.app_context():
        verified_account(RFC, RECEPTOR["email"])
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    with statements(app) as seen:
        _check(client, "total", ticket_data(t, key))
    assert len(_from("issuer", seen)) == 1, seen
    assert len(_from("ticket", seen)) == 1, seen


def test_a_kiosk_s_check_reads_its_branch_with_the_issuer(app, client, demo):
    enrol(app, client)
    r = client.post("/facturar/demo/rfc", data={"rfc": RFC})
    assert r.status_code == 200
    key = re.search(r'name="key" type="hidden" value="([^"]+)"', r.get_data(as_text=True))
    t = demo["fresh"][0]
    with statements(app) as seen:
        body = _check(client, "total", ticket_data(t, key.group(1)))
    assert "field-error" not in body
    assert len(_from("issuer", seen)) == 1 and len(_from("ticket", seen)) == 1, seen
    assert not _from("branch", seen), seen  # joined to the issuer's query, not on its own


def test_without_guest_invoicing_the_check_is_refused_after_one_query(app, client, demo):
    with app.app_context():
        db.session.scalar(select(Issuer).where(Issuer.slug == "demo")).guest_invoicing = False
        db.session.commit()
    with statements(app) as seen:
        r = client.post("/facturar/demo/ticket/campo/total", headers=HX)
    assert r.status_code == 204 and r.headers["HX-Redirect"].startswith("/cuenta/entrar")
    assert len(seen) == 1 and _from("issuer", seen) == seen, seen


def test_an_unknown_issuer_is_still_a_404(client, demo):
    r = client.post("/facturar/no-existe/ticket/campo/total", headers=HX)
    assert r.status_code == 404


def test_the_check_still_needs_the_session_s_csrf_token(make_app, demo):
    """Its form makes no token of its own (the answer holds no form), but the request is
    refused without the session's."""
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    page = client.get("/facturar/demo/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    t = demo["fresh"][0]
    r = client.post(
        "/facturar/demo/",
        data={"branch": str(t["branch_id"]), "rfc": RFC, "csrf_token": token},
    )
    assert r.status_code == 200 and "Datos del ticket" in r.get_data(as_text=True)
    data = ticket_data(t, "k" * 32)
    refused = client.post("/facturar/demo/ticket/campo/total", data=data, headers=HX)
    assert refused.status_code == 400
    body = _check(client, "total", {**data, "csrf_token": token})
    assert "field-error" not in body and "csrf_token" not in body


# --- WTForms' messages, in each visitor's language ----------------------------------------------


class _Required(FlaskForm):
    x = StringField(validators=[DataRequired()])


def test_wtforms_messages_follow_each_request_s_language(app):
    """Its catalogs are read once per process, one per language: Spanish and English answers
    alternate without one leaking into the other."""
    expected = {"es_MX": "Este campo es obligatorio.", "en": "This field is required."}
    for _ in range(2):
        for lang, message in expected.items():
            with app.test_request_context("/", method="POST", headers={"Cookie": f"lang={lang}"}):
                form = _Required(meta={"csrf": False})
                assert not form.validate()
                assert form.x.errors == [message]


def test_templates_and_labels_translate_in_each_request_s_language(app, client, demo):
    """The templates' _() and the forms' lazy labels look the catalog up once per request, in
    that request's language."""
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    for _ in range(2):
        client.set_cookie("lang", "en")
        english = client.get("/facturar/demo/").get_data(as_text=True)
        inline_en = _check(client, "total", ticket_data(t, key))
        client.set_cookie("lang", "es_MX")
        spanish = client.get("/facturar/demo/").get_data(as_text=True)
        inline_es = _check(client, "total", ticket_data(t, key))
        assert "<h1>Branch and RFC</h1>" in english and "At which branch" in english
        assert "<h1>Sucursal y RFC</h1>" in spanish and "¿En qué sucursal" in spanish
        assert '<label for="total">Receipt total</label>' in inline_en
        assert '<label for="total">Total del ticket</label>' in inline_es


# --- The flow's widgets write WTForms' own HTML -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "total", "id": "total", "value": "73.50", "maxlength": 20},
        {"value": "a \"quoted\" <b>&amp;</b> 'x'"},
        {"value": Markup('<i class="x">safe</i>')},
        {"checked": True, "readonly": False, "class_": "c", "for_": "f"},
        {"data_hx_post": "/x?a=1&b=2", "aria_describedby": "h e", "aria-invalid": "true"},
        {"value": 0, "size": 3.5, "title": None},
        {},
    ],
)
def test_html_params_writes_what_wtforms_writes(kwargs):
    assert str(fast.html_params(**kwargs)) == str(wtforms_html_params(**kwargs))
    assert isinstance(fast.html_params(**kwargs), Markup)


def test_the_ticket_form_renders_as_with_wtforms_own_widgets(app, demo):
    stock = {
        "TextInput": widgets.TextInput(),
        "EmailInput": widgets.EmailInput(),
        "HiddenInput": widgets.HiddenInput(),
        "Select": widgets.Select(),
    }
    data = ticket_data(demo["fresh"][0], "k" * 32, nombre='ACME "<&>"', regimen="612")
    with app.test_request_context("/", method="POST", data=data):
        form = TicketForm()
        form.fill_choices(db.session.scalar(select(Issuer).where(Issuer.slug == "demo")), RFC)
        form.nombre.errors = ["x"]
        for field in form:
            if field.type == "CSRFTokenField":
                continue
            widget = stock[type(field.widget).__mro__[1].__name__]
            attrs = {"aria_describedby": f"{field.id}-hint", **(field.render_kw or {})}
            assert str(field(aria_describedby=f"{field.id}-hint")) == str(widget(field, **attrs))
