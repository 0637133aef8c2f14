"""Mis servicios (issue #15 point 3): adding a line with the 6-digit code sent to it by SMS,
its detail (Consultar) and removing it; the same answer whether or not the number is a line,
codes hashed, single use, 10 minutes, 5 tries, another only after 60 s, and limits per
number, account and IP that parallel requests cannot exceed."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.flows import EMAIL, OTHER_RFC, PASSWORD, RFC, sign_in, verified_account
from webapp.billing import lines, terms
from webapp.demo.services import contract_number, mobile_number
from webapp.extensions import db
from webapp.models import (
    Issuer,
    LineCode,
    LineHolder,
    LineKind,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    ServiceType,
    SmsMessage,
    SmsStatus,
    Ticket,
)
from webapp.sms import segments

SECRET = "test-secret-key"  # noqa: S105 (make_app's SECRET_KEY)
GENERIC = "El código no es válido o venció. Genere uno nuevo."
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(make_app, request):
    """The app, with the settings a test passes with `config(...)`."""
    return make_app(**getattr(request, "param", {}))


def config(**settings):
    return pytest.mark.parametrize("app", [settings], indirect=True, ids=["limits"])


def _stub_other_pages(app) -> None:
    """The menu links pages other modules serve (Facturación, Estado de cuenta, the terms);
    until they exist, stand-ins so the menu can be drawn."""
    for endpoint, rule in (
        ("myservices.bills", "/servicios/<slug>/facturacion"),
        ("myservices.statement", "/servicios/<slug>/estado-de-cuenta"),
        ("myservices.terms", "/servicios/<slug>/terminos"),
        ("myservices.bill", "/servicios/<slug>/facturas/<public_id>"),
    ):
        if endpoint not in app.view_functions:
            app.add_url_rule(rule, endpoint, lambda **_: "")


def _holder(app, rfc: str, email: str) -> int:
    """A verified account that accepted the telecom's current terms."""
    with app.app_context():
        account_id = verified_account(rfc, email)
        issuer = db.session.scalar(select(Issuer).where(Issuer.kind == "services"))
        current = terms.current(db.session, issuer.id)
        terms.accept(db.session, account_id, current, datetime.now(UTC))
        db.session.commit()
        return account_id


def _signed_in(app, rfc: str = RFC):
    client = app.test_client()
    assert sign_in(client, rfc, PASSWORD).status_code in (302, 303)
    return client


@pytest.fixture
def world(app, telecom):
    _stub_other_pages(app)
    me = _holder(app, RFC, EMAIL)
    other = _holder(app, OTHER_RFC, "otra@example.com")
    base = f"/servicios/{telecom['slug']}"
    return {
        "app": app,
        "me": me,
        "other": other,
        "client": _signed_in(app),
        "base": base,
        "add": f"{base}/lineas/agregar?tipo=MOVIL",
        "issuer_id": telecom["issuer_id"],
    }


def texts_to(app, number: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(SmsMessage.text)
                .where(SmsMessage.to_number == number)
                .order_by(SmsMessage.id)
            )
        )


def code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def generate(client, url: str, number: str, **kwargs):
    return client.post(url, data={"numero": number}, **kwargs)


# --- Adding a line ------------------------------------------------------------------------


def test_a_line_is_added_with_the_code_sent_to_it(world):
    app, client, base = world["app"], world["client"], world["base"]
    home = client.get(f"{base}/mis-servicios").get_data(as_text=True)
    assert "Agregar línea" in home and "Aún no tiene líneas" in home
    assert f"{base}/lineas/agregar?tipo=MOVIL" in home  # the types of service (seed 1.4)
    assert "?tipo=HOGAR" in home and "?tipo=TV" in home

    step1 = client.get(world["add"]).get_data(as_text=True)
    assert 'name="numero"' in step1 and "GENERAR" in step1 and 'type="tel"' in step1

    answer = generate(client, world["add"], "55 8000 0001")
    assert answer.status_code == 303 and answer.location.endswith("/lineas/agregar?tipo=MOVIL")
    step2 = client.get(answer.location).get_data(as_text=True)
    assert "recibirá un SMS con un código" in step2 and "+525580000001" in step2
    field = re.search(r"<input[^>]*name=\"codigo\"[^>]*>", step2).group(0)
    for attribute in (
        'inputmode="numeric"',
        'autocomplete="one-time-code"',
        'pattern="[0-9]{6}"',
        'maxlength="6"',
    ):
        assert attribute in field
    assert "CÓDIGO" in step2 and "Aceptar" in step2 and "Reenviar código" in step2

    (text,) = texts_to(app, mobile_number(1))
    assert "su código para agregar la línea es" in text.replace("codigo", "código").replace(
        "linea", "línea"
    )
    assert segments(text).count == 1
    code = code_in(text)
    with app.app_context():
        row = db.session.scalar(select(LineCode))
        assert code not in row.code_hash and row.line_id is not None and row.used_at is None

    accepted = client.post(world["add"], data={"codigo": code})
    assert accepted.status_code == 303 and accepted.location.endswith(f"{base}/mis-servicios")
    home = client.get(accepted.location).get_data(as_text=True)
    assert "Agregamos la línea +525580000001" in home
    assert "+525580000001" in home and "Consultar" in home
    assert count(app, LineHolder, LineHolder.account_id == world["me"]) == 1
    with app.app_context():
        assert db.session.scalar(select(LineCode.used_at)) is not None


def test_an_unknown_number_gets_the_same_answer_and_no_sms(world):
    app, client = world["app"], world["client"]
    known = generate(client, world["add"], "55 8000 0002")
    known_page = client.get(known.location).get_data(as_text=True)
    other = _signed_in(app, OTHER_RFC)
    unknown = generate(other, world["add"], "55 9999 0000")
    unknown_page = other.get(unknown.location).get_data(as_text=True)
    assert (unknown.status_code, unknown.location) == (known.status_code, known.location)

    def neutral(page: str) -> str:
        page = re.sub(r'name="csrf_token" value="[^"]*"|"X-CSRFToken": "[^"]*"', "", page)
        return page.replace("+525599990000", "N").replace("+525580000002", "N")

    assert neutral(unknown_page) == neutral(known_page)
    assert texts_to(app, "+525599990000") == []
    assert count(app, LineCode, LineCode.number == "+525599990000", LineCode.line_id.is_(None)) == 1
    # Its "code" is refused like a wrong one.
    answer = other.post(world["add"], data={"codigo": "123456"})
    assert answer.status_code == 422 and GENERIC in answer.get_data(as_text=True)


def test_a_contract_line_code_goes_to_the_account_contact_mobile(world):
    app, client = world["app"], world["client"]
    with app.app_context():
        line = db.session.scalar(
            select(ServiceLine)
            .join(ServiceType, ServiceType.id == ServiceLine.service_type_id)
            .where(ServiceType.line_kind == LineKind.CONTRACT)
            .order_by(ServiceLine.id)
        )
        if line is None:  # the demo's random draw gave no home line: make one
            account = db.session.scalar(select(ServiceAccount).order_by(ServiceAccount.id))
            hogar = db.session.scalar(select(ServiceType).where(ServiceType.code == "HOGAR"))
            line = ServiceLine(
                issuer_id=account.issuer_id,
                service_account_id=account.id,
                service_type_id=hogar.id,
                number=contract_number(99),
            )
            db.session.add(line)
            db.session.commit()
        number, mobile = line.number, line.account.contact_mobile
        tipo, line_id = line.service_type.code, line.id
    url = f"{world['base']}/lineas/agregar?tipo={tipo}"
    assert generate(client, url, f"  {number.lower()} ").status_code == 303
    code = code_in(texts_to(app, mobile)[-1])
    assert client.post(url, data={"codigo": code}).status_code == 303
    assert count(app, LineHolder, LineHolder.line_id == line_id) == 1


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abc",
        "55 8000",
        "5" * 60,
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "55\u202e80000001",
        "５５ ８０００ ０００１",
        "+1 202 555 0100",
    ],
)
def test_bad_numbers_get_a_message_next_to_the_field(world, typed):
    answer = generate(world["client"], world["add"], typed)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'class="field-error"' in page and ("Escriba" in page)
    assert "<script>alert" not in page
    assert count(world["app"], LineCode) == 0


def test_bad_codes_get_a_message_and_unknown_types_404(world):
    client = world["client"]
    generate(client, world["add"], "55 8000 0003")
    for typed in ("", "12345", "abcdef", "1234567", "<b>1</b>"):
        answer = client.post(world["add"], data={"codigo": typed})
        assert answer.status_code == 422
        assert "Escriba los 6 dígitos" in answer.get_data(as_text=True)
    with world["app"].app_context():
        assert db.session.scalar(select(LineCode.attempts)) == 0
    assert client.get(f"{world['base']}/lineas/agregar?tipo=NADA").status_code == 404
    assert client.get(f"{world['base']}/lineas/agregar").status_code == 200  # the types


def test_htmx_swaps_the_code_step_in_place(world):
    answer = generate(world["client"], world["add"], "55 8000 0004", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert answer.headers["HX-Push-Url"].endswith("/lineas/agregar?tipo=MOVIL")
    assert answer.headers["HX-Retarget"] == "#contenido"
    page = answer.get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page and "recibirá un SMS" in page
    code = code_in(texts_to(world["app"], mobile_number(4))[-1])
    done = world["client"].post(world["add"], data={"codigo": code}, headers={"HX-Request": "true"})
    assert done.status_code == 204 and done.headers["HX-Redirect"].endswith("/mis-servicios")


# --- The code's rules (the domain, with a clock) -----------------------------------------


def _request(app, account_id, number, now, **kwargs):
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.kind == "services"))
        movil = db.session.scalar(select(ServiceType).where(ServiceType.code == "MOVIL"))
        result = lines.request_code(
            db.session, account_id, issuer, movil, number, now, secret=SECRET, **kwargs
        )
        db.session.commit()
        return result


def _confirm(app, account_id, number, code, now):
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.kind == "services"))
        held = lines.confirm(db.session, account_id, issuer, number, code, now, secret=SECRET)
        db.session.commit()
        return held is not None


def test_five_wrong_codes_end_the_code(world):
    app, me, number = world["app"], world["me"], mobile_number(5)
    assert _request(app, me, number, T0).outcome is lines.Outcome.SENT
    code = code_in(texts_to(app, number)[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(lines.MAX_ATTEMPTS):
        assert not _confirm(app, me, number, wrong, T0)
    assert not _confirm(app, me, number, code, T0)  # right, but too late
    with app.app_context():
        assert db.session.scalar(select(LineCode.attempts)) == lines.MAX_ATTEMPTS


def test_five_wrong_codes_through_the_page(world):
    client = world["client"]
    generate(client, world["add"], "55 8000 0006")
    code = code_in(texts_to(world["app"], mobile_number(6))[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        answer = client.post(world["add"], data={"codigo": wrong})
        assert answer.status_code == 422 and GENERIC in answer.get_data(as_text=True)
    answer = client.post(world["add"], data={"codigo": code})
    assert answer.status_code == 422 and GENERIC in answer.get_data(as_text=True)


def test_a_code_expires_after_ten_minutes(world):
    app, me, number = world["app"], world["me"], mobile_number(7)
    _request(app, me, number, T0)
    code = code_in(texts_to(app, number)[-1])
    assert not _confirm(app, me, number, code, T0 + lines.CODE_TTL)
    _request(app, me, number, T0 + timedelta(minutes=11))
    fresh = code_in(texts_to(app, number)[-1])
    assert _confirm(app, me, number, fresh, T0 + timedelta(minutes=20, seconds=59))


def test_a_code_works_once_and_holding_is_idempotent(world):
    app, me, number = world["app"], world["me"], mobile_number(8)
    _request(app, me, number, T0)
    code = code_in(texts_to(app, number)[-1])
    assert _confirm(app, me, number, code, T0 + timedelta(seconds=30))
    assert not _confirm(app, me, number, code, T0 + timedelta(seconds=40))
    _request(app, me, number, T0 + timedelta(minutes=2))
    again = code_in(texts_to(app, number)[-1])
    assert _confirm(app, me, number, again, T0 + timedelta(minutes=3))
    assert count(app, LineHolder, LineHolder.account_id == me) == 1


def test_another_code_only_after_sixty_seconds_and_it_replaces_the_first(world):
    app, me, number = world["app"], world["me"], mobile_number(9)
    _request(app, me, number, T0)
    first = code_in(texts_to(app, number)[-1])
    soon = _request(app, me, number, T0 + timedelta(seconds=45))
    assert soon.outcome is lines.Outcome.TOO_SOON and soon.wait_seconds == 15
    assert len(texts_to(app, number)) == 1
    later = _request(app, me, number, T0 + timedelta(seconds=60))
    assert later.outcome is lines.Outcome.SENT
    second = code_in(texts_to(app, number)[-1])
    if second != first:
        assert not _confirm(app, me, number, first, T0 + timedelta(seconds=61))
    assert _confirm(app, me, number, second, T0 + timedelta(seconds=62))


def test_resend_on_the_page_before_sixty_seconds_answers_the_wait(world):
    client = world["client"]
    generate(client, world["add"], "55 8000 0010")
    answer = client.post(world["add"], data={"reenviar": "1"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) <= 60
    assert "Podrá pedir otro en" in page and 'name="codigo"' in page
    assert len(texts_to(world["app"], mobile_number(10))) == 1


def test_expired_code_texts_are_blanked_in_the_outbox(world):
    app, me, number = world["app"], world["me"], mobile_number(11)
    _request(app, me, number, T0)
    with app.app_context():
        db.session.execute(
            SmsMessage.__table__.update().values(status=SmsStatus.SENT, created_at=T0)
        )
        db.session.commit()
        assert lines.purge_expired_texts(db.session, T0 + timedelta(minutes=5)) == 0
        assert lines.purge_expired_texts(db.session, T0 + lines.CODE_TTL) == 1
        db.session.commit()
    (text,) = texts_to(app, number)
    assert not re.search(r"\d{6}", text)


def test_the_sms_is_one_message_whatever_the_issuer_name():
    for name in ("Mi Línea", "INDISTRIA ILUMINADORA DE ALMACENES", "Ñ" * 120):
        text = lines.sms_text(name, "012345")
        assert segments(text).count == 1 and "012345" in text
    assert lines.sms_text("Tel", "999999").startswith("Tel: su código")


# --- Limits ---------------------------------------------------------------------------------


@config(RATELIMIT_ENABLED=True, RATELIMIT_LINE_CODE_NUMBER="1/hour")
def test_codes_are_limited_per_number(world):
    assert generate(world["client"], world["add"], "55 8000 0001").status_code == 303
    other = _signed_in(world["app"], OTHER_RFC)
    answer = generate(other, world["add"], "55 8000 0001")
    assert answer.status_code == 429
    assert "demasiados códigos" in answer.get_data(as_text=True)
    assert generate(other, world["add"], "55 8000 0002").status_code == 303


@config(RATELIMIT_ENABLED=True, RATELIMIT_LINE_CODE_ACCOUNT="2/hour")
def test_codes_are_limited_per_account(world):
    client = world["client"]
    for i in (1, 2):
        assert generate(client, world["add"], mobile_number(i)).status_code == 303
    assert generate(client, world["add"], mobile_number(3)).status_code == 429
    other = _signed_in(world["app"], OTHER_RFC)
    assert generate(other, world["add"], mobile_number(3)).status_code == 303


@config(RATELIMIT_ENABLED=True, RATELIMIT_LINE_CODE_IP="2/hour")
def test_codes_are_limited_per_ip(world):
    client, other = world["client"], _signed_in(world["app"], OTHER_RFC)
    assert generate(client, world["add"], mobile_number(1)).status_code == 303
    assert generate(other, world["add"], mobile_number(2)).status_code == 303
    assert generate(other, world["add"], mobile_number(3)).status_code == 429
    elsewhere = generate(
        other, world["add"], mobile_number(3), environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert elsewhere.status_code == 303


PARALLEL = 8


def _parallel(app, post) -> list[int]:
    clients = [_signed_in(app) for _ in range(PARALLEL)]
    start = threading.Barrier(PARALLEL)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def run(i, client):
        try:
            start.wait()
            statuses.append(post(i, client).status_code)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(statuses) == PARALLEL
    return statuses


@config(
    RATELIMIT_ENABLED=True,
    RATELIMIT_LINE_CODE_ACCOUNT="3/hour",
    RATELIMIT_SIGNIN_ACCOUNT="50/minute",
)
def test_parallel_requests_do_not_exceed_the_account_limit(world):
    app = world["app"]
    statuses = _parallel(app, lambda i, c: generate(c, world["add"], mobile_number(i)))
    assert sorted(statuses) == [303] * 3 + [429] * (PARALLEL - 3)
    assert count(app, LineCode) == 3
    assert count(app, SmsMessage) == 3


@config(RATELIMIT_SIGNIN_ACCOUNT="50/minute")
def test_parallel_requests_for_one_number_send_one_code(world):
    app = world["app"]
    statuses = _parallel(app, lambda i, c: generate(c, world["add"], mobile_number(1)))
    assert sorted(statuses) == [303] + [429] * (PARALLEL - 1)
    assert count(app, LineCode) == 1
    assert len(texts_to(app, mobile_number(1))) == 1


# --- Consultar and removing ------------------------------------------------------------------


def _add(world, client, i: int) -> int:
    generate(client, world["add"], mobile_number(i))
    code = code_in(texts_to(world["app"], mobile_number(i))[-1])
    assert client.post(world["add"], data={"codigo": code}).status_code == 303
    with world["app"].app_context():
        return db.session.scalar(
            select(ServiceLine.id).where(ServiceLine.number == mobile_number(i))
        )


def _bill(app, line_id: int, period: str, due: str) -> None:
    with app.app_context():
        line = db.session.get(ServiceLine, line_id)
        branch = line.account.issuer.branches[0]
        ticket = Ticket(
            branch_id=branch.id,
            ticket_number=f"B{period}",
            order_number=f"B{period}",
            total=Decimal(due),
            sold_at=T0,
        )
        db.session.add(ticket)
        db.session.flush()
        year, month = map(int, period.split("-"))
        db.session.add(
            ServiceBill(
                issuer_id=line.issuer_id,
                service_account_id=line.service_account_id,
                period=period,
                kind="receipt",
                cut_date=datetime(year, month, 28).date(),
                due_date=datetime(year, month, 28).date() + timedelta(days=10),
                previous_balance=Decimal("0"),
                charges_total=Decimal(due),
                payments_total=Decimal("0"),
                balance_due=Decimal(due),
                ticket_id=ticket.id,
            )
        )
        db.session.commit()


def test_consultar_shows_the_line_and_its_latest_bills(world):
    app, client, base = world["app"], world["client"], world["base"]
    line_id = _add(world, client, 0)
    for month in range(1, 9):
        _bill(app, line_id, f"2025-{month:02d}", f"{100 + month}.00")
    page = client.get(f"{base}/lineas/{line_id}").get_data(as_text=True)
    with app.app_context():
        line = db.session.get(ServiceLine, line_id)
        plan, holder, day = line.plan.name, line.account.holder_name, line.account.billing_day
    assert "+525580000000" in page and "Móvil" in page and plan in page and "Activa" in page
    assert holder in page and f"El {day} de cada mes" in page
    periods = re.findall(r"<td>(2025-\d\d)</td>", page)
    assert periods == [f"2025-{m:02d}" for m in range(8, 2, -1)]  # newest first, six
    with app.app_context():
        ids = dict(db.session.execute(select(ServiceBill.period, ServiceBill.public_id)).all())
    for period in periods:  # each opens its bill (Ver Factura)
        assert ids[period] in page
    assert ids["2025-01"] not in page


def test_another_account_cannot_open_or_remove_a_line_it_does_not_hold(world):
    app, base = world["app"], world["base"]
    line_id = _add(world, world["client"], 1)
    other = _signed_in(app, OTHER_RFC)
    assert other.get(f"{base}/lineas/{line_id}").status_code == 404
    assert other.get(f"{base}/lineas/{line_id}/quitar").status_code == 404
    assert other.post(f"{base}/lineas/{line_id}/quitar").status_code == 404
    assert other.get(f"{base}/lineas/999999").status_code == 404
    assert count(app, LineHolder) == 1
    assert app.test_client().get(f"{base}/lineas/{line_id}").status_code in (302, 303)


def test_a_line_is_removed_after_confirming(world):
    app, client, base = world["app"], world["client"], world["base"]
    line_id = _add(world, client, 2)
    confirm = client.get(f"{base}/lineas/{line_id}/quitar").get_data(as_text=True)
    assert "¿Quitar la línea +525580000002?" in confirm and 'method="post"' in confirm
    answer = client.post(f"{base}/lineas/{line_id}/quitar")
    assert answer.status_code == 303 and answer.location.endswith("/mis-servicios")
    home = client.get(answer.location).get_data(as_text=True)
    assert "Quitamos la línea +525580000002" in home and "Aún no tiene líneas" in home
    assert count(app, LineHolder) == 0
    assert client.get(f"{base}/lineas/{line_id}").status_code == 404
