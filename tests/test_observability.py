"""Logs an operator can follow: a request id on every request, its log lines and its answer;
JSON lines with LOG_FORMAT=json; and the back office's invoices per state, stuck ones apart."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import g

from webapp.extensions import db
from webapp.models import Invoice, InvoiceStatus, Issuer
from webapp.observability import access_log

HEX_ID = re.compile(r"[0-9a-f]{16}")


def json_lines(text: str) -> list[dict]:
    """Every line must be a JSON object: nothing else may reach the log."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- Request id ------------------------------------------------------------------------


def test_a_sane_request_id_is_echoed(client):
    r = client.get("/", headers={"X-Request-ID": "lb-7f3a.9_Z"})
    assert r.headers["X-Request-ID"] == "lb-7f3a.9_Z"


def test_a_request_without_one_gets_a_fresh_id(client):
    first = client.get("/").headers["X-Request-ID"]
    second = client.get("/").headers["X-Request-ID"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "hostile",
    [
        "abc\r\nSet-Cookie: session=stolen",
        "a" * 500,
        "id with spaces",
        "<script>",
        "",
    ],
)
def test_a_hostile_request_id_is_replaced(client, hostile):
    # Straight into the WSGI environ: the test client refuses to build such a header.
    r = client.get("/", environ_overrides={"HTTP_X_REQUEST_ID": hostile})
    assert r.status_code == 200
    assert HEX_ID.fullmatch(r.headers["X-Request-ID"])
    assert "stolen" not in str(r.headers)


def test_errors_carry_the_request_id_too(client):
    r = client.get("/no-such-page", headers={"X-Request-ID": "trace-404"})
    assert r.status_code == 404 and r.headers["X-Request-ID"] == "trace-404"


# --- Log lines -------------------------------------------------------------------------


def _logging_route(app):
    """A view that logs as the app's code does, with `extra` fields."""

    def view():
        logging.getLogger("webapp.invoicing").warning(
            "stamping refused", extra={"provider": "sandbox", "duration_ms": 12.5}
        )
        return g.request_id

    app.add_url_rule("/_log", "test_log", view)


def test_json_lines_carry_the_request_id_and_the_extra_fields(make_app, capsys):
    app = make_app(LOG_FORMAT="json")
    _logging_route(app)
    client = app.test_client()
    capsys.readouterr()

    r = client.get(
        "/_log?rfc=XOJI740919U48&email=ingrid@example.com", headers={"X-Request-ID": "t-1"}
    )
    assert r.get_data(as_text=True) == "t-1"  # the views read it as flask.g.request_id
    lines = json_lines(capsys.readouterr().err)

    warning = next(line for line in lines if line["message"] == "stamping refused")
    assert warning["request_id"] == "t-1"
    assert warning["level"] == "WARNING" and warning["logger"] == "webapp.invoicing"
    assert warning["provider"] == "sandbox" and warning["duration_ms"] == 12.5
    assert datetime.fromisoformat(warning["ts"]).utcoffset() == timedelta(0)

    (access,) = [line for line in lines if line["logger"] == "webapp.access"]
    assert access["request_id"] == "t-1"
    assert access["method"] == "GET" and access["path"] == "/_log" and access["status"] == 200
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] >= 0
    # The query string may carry personal data: it never reaches the log.
    assert "XOJI740919U48" not in json.dumps(lines) and "ingrid" not in json.dumps(lines)


def test_one_access_line_per_request_with_its_own_id(make_app, capsys):
    make_app(LOG_FORMAT="json")  # building the app again must not log each line twice
    client = make_app(LOG_FORMAT="json").test_client()
    capsys.readouterr()

    ids = [client.get("/").headers["X-Request-ID"] for _ in range(3)]
    client.get("/nada-por-aqui")
    access = [
        line for line in json_lines(capsys.readouterr().err) if line["logger"] == "webapp.access"
    ]

    assert [line["request_id"] for line in access[:3]] == ids
    assert [line["status"] for line in access] == [200, 200, 200, 404]


def test_static_files_stay_out_of_the_access_log(make_app, capsys):
    client = make_app(LOG_FORMAT="json").test_client()
    capsys.readouterr()
    assert client.get("/static/app.css").status_code == 200
    client.get("/")
    paths = [line.get("path") for line in json_lines(capsys.readouterr().err)]
    assert paths == ["/"]


def test_outside_a_request_the_request_id_is_a_dash(make_app, capsys):
    make_app(LOG_FORMAT="json")
    capsys.readouterr()
    logging.getLogger("webapp.mail").info("worker started")
    (line,) = json_lines(capsys.readouterr().err)
    assert line["message"] == "worker started" and line["request_id"] == "-"


def test_text_lines_carry_the_request_id_and_the_extra_fields(make_app, capsys):
    app = make_app(LOG_FORMAT="text")
    _logging_route(app)
    client = app.test_client()
    capsys.readouterr()
    client.get("/_log?rfc=XOJI740919U48", headers={"X-Request-ID": "txt-9"})
    lines = capsys.readouterr().err.splitlines()
    (warning,) = [line for line in lines if "stamping refused" in line]
    assert "WARNING [txt-9] webapp.invoicing" in warning
    assert "provider=sandbox" in warning and "duration_ms=12.5" in warning
    (access,) = [line for line in lines if "webapp.access" in line]
    assert "INFO [txt-9] webapp.access: GET /_log 200 " in access
    assert "XOJI740919U48" not in "\n".join(lines)


def test_log_level_hides_what_is_below_it(make_app, capsys):
    client = make_app(LOG_FORMAT="json", LOG_LEVEL="WARNING").test_client()
    capsys.readouterr()
    client.get("/")
    access_log.warning("slow answer")
    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["slow answer"]


@pytest.mark.parametrize("setting", [{"LOG_FORMAT": "xml"}, {"LOG_LEVEL": "LOUD"}])
def test_an_unknown_log_setting_refuses_to_start(make_app, setting):
    (name,) = setting
    with pytest.raises(RuntimeError, match=name):
        make_app(**setting)


# --- The back office's counters per state ----------------------------------------------


def _invoice(issuer_id: int, branch_id: int, folio: int, status: InvoiceStatus, age: timedelta):
    now = datetime.now(UTC)
    return Invoice(
        issuer_id=issuer_id,
        branch_id=branch_id,
        status=status,
        serie="OBS",
        folio=folio,
        fecha=now - age,
        receptor_rfc="XOJI740919U48",
        receptor_nombre="INGRID XODAR JIMENEZ",
        receptor_cp="88965",
        receptor_regimen="612",
        uso_cfdi="G03",
        forma_pago="01",
        subtotal=Decimal("100.00"),
        taxes=Decimal("16.00"),
        total=Decimal("116.00"),
        created_at=now - age,
        updated_at=now - age,
    )


LABELS = ("Borrador", "Firmada", "Timbrando", "Timbrada", "Fallida", "Cancelada")


def states(html: str) -> dict[str, int]:
    section = html.split("Facturas por estado", 1)[1]
    return {
        label: int(re.search(rf"<dt>{label}</dt><dd>(\d+)</dd>", section).group(1))
        for label in LABELS
    }


def test_the_dashboard_counts_invoices_per_state_and_flags_stuck_ones(
    app, demo, staff, admin_login
):
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    before = states(admin.get("/admin/").get_data(as_text=True))

    fresh, old = timedelta(seconds=10), timedelta(minutes=30)
    with app.app_context():
        issuer = db.session.get(Issuer, staff["issuer_id"])
        branch_id = issuer.branches[0].id
        mine = [
            (InvoiceStatus.DRAFT, fresh),
            (InvoiceStatus.SIGNED, old),  # stuck
            (InvoiceStatus.STAMPING, old),  # stuck
            (InvoiceStatus.STAMPING, old),  # stuck
            (InvoiceStatus.STAMPING, fresh),  # on its way, not stuck yet
            (InvoiceStatus.STAMPED, old),  # done long ago: never stuck
            (InvoiceStatus.FAILED, fresh),
            (InvoiceStatus.CANCELLED, old),
        ]
        for folio, (status, age) in enumerate(mine, start=90001):
            db.session.add(_invoice(issuer.id, branch_id, folio, status, age))
        theirs = [InvoiceStatus.FAILED] * 5 + [InvoiceStatus.STAMPING] * 4
        for folio, status in enumerate(theirs, start=1):
            db.session.add(
                _invoice(staff["other_issuer_id"], staff["other_branch_id"], folio, status, old)
            )
        db.session.commit()

    html = admin.get("/admin/").get_data(as_text=True)
    after = states(html)
    added = {label: after[label] - before[label] for label in LABELS}
    assert added == {
        "Borrador": 1,
        "Firmada": 1,
        "Timbrando": 3,
        "Timbrada": 1,
        "Fallida": 1,
        "Cancelada": 1,
    }
    assert "3 facturas atascadas" in html and "2 atascadas" in html  # 2 of them "timbrando"

    # The other issuer's admin sees their own invoices only, and their own stuck ones.
    other = app.test_client()
    admin_login(other, staff["other_admin"])
    theirs_html = other.get("/admin/").get_data(as_text=True)
    assert states(theirs_html) == {
        "Borrador": 0,
        "Firmada": 0,
        "Timbrando": 4,
        "Timbrada": 0,
        "Fallida": 5,
        "Cancelada": 0,
    }
    assert "4 facturas atascadas" in theirs_html


def test_no_stuck_notice_when_nothing_is_stuck(app, demo, staff, admin_login):
    other = app.test_client()
    admin_login(other, staff["other_admin"])
    html = other.get("/admin/").get_data(as_text=True)
    assert states(html) == dict.fromkeys(LABELS, 0)
    assert "atascada" not in html
