"""The SMS outbox: queued with the change that causes it, numbers in E.164 (Mexico, Ecuador),
texts measured in GSM-7/UCS-2 messages, delivered by the worker to files read at /dev/sms, and
SMS_URL checked at start. The Twilio adapter is tested in tests/test_sms_http.py."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.config import ROOT
from webapp.extensions import db
from webapp.models import Issuer, SmsMessage, SmsStatus, utcnow
from webapp.sms import normalise_number, queue_sms, segments
from webapp.sms.cli import app_sessions
from webapp.sms.transport import FileTransport, TwilioTransport, transport_from_url
from webapp.sms.worker import claim, deliver, run_once

CODE = "Su código de verificación es 123456"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "s3cr3t-t0ken"  # noqa: S105


@pytest.fixture
def sms_app(make_app, tmp_path):
    """make_app with the file transport writing into tmp_path/sms."""

    def factory(**overrides):
        return make_app(**{"SMS_URL": f"file://{tmp_path / 'sms'}", **overrides})

    return factory


def queue(app, to: str = "55 1234 5678", text: str = CODE, count: int = 1) -> list[int]:
    with app.app_context():
        messages = [queue_sms(db.session, to, text) for _ in range(count)]
        db.session.commit()
        return [m.id for m in messages]


def rows(app) -> list[SmsMessage]:
    with app.app_context():
        return list(db.session.scalars(select(SmsMessage).order_by(SmsMessage.id)))


def send_due(app, now=None) -> int:
    """One run of the worker, as `flask sms worker --once` does."""
    return run_once(app_sessions(app), app.config, now)


def files(tmp_path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "sms").glob("*.json"))]


def issuer(rfc: str = "AAA010101AAA", slug: str = "tienda") -> Issuer:
    return Issuer(slug=slug, rfc=rfc, legal_name="Tienda SA", regimen_fiscal="601", cp="06000")


# --- Queueing: in the caller's transaction -------------------------------------------------


def test_sms_is_queued_in_the_transaction_of_the_change(sms_app, tmp_path):
    app = sms_app()
    with app.app_context():
        db.session.add(issuer())
        queue_sms(db.session, "55 1234 5678", CODE)
        db.session.rollback()
    assert rows(app) == []
    assert send_due(app) == 0

    # A change that fails at commit takes its SMS with it.
    with app.app_context():
        db.session.add(issuer())
        db.session.commit()
    with app.app_context():
        db.session.add(issuer())  # the same RFC: the commit fails
        queue_sms(db.session, "55 1234 5678", CODE)
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
    assert rows(app) == []

    with app.app_context():
        db.session.add(issuer("BBB010101BBB", "otra"))
        queue_sms(db.session, "55 1234 5678", CODE)
        db.session.commit()
    [row] = rows(app)
    assert (row.status, row.attempts, row.to_number) == (SmsStatus.PENDING, 0, "+525512345678")
    assert send_due(app) == 1
    assert [(f["to"], f["text"]) for f in files(tmp_path)] == [("+525512345678", CODE)]


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("55 1234 5678", "+525512345678"),
        ("+52 55 1234 5678", "+525512345678"),
        ("5512345678", "+525512345678"),
        ("(55) 1234-5678", "+525512345678"),
        (" 55.1234.5678 ", "+525512345678"),
        ("+52 1 55 1234 5678", "+525512345678"),  # the mobile "1" dropped in 2019
        ("+52 81 8765 4321", "+528187654321"),
        ("+593 99 123 4567", "+593991234567"),
        ("099 123 4567", "+593991234567"),
        ("+593991234567", "+593991234567"),
    ],
)
def test_numbers_are_normalised_to_e164(typed, e164):
    assert normalise_number(typed) == e164


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "1234 5678",  # eight digits: no area code
        "55 1234 567",  # nine
        "55 1234 56789",  # eleven
        "05 1234 5678",  # no Mexican area code starts with 0 (nor is it 09: Ecuador)
        "15 1234 5678",  # nor with 1
        "+52 55 1234 567",
        "+52 2 55 1234 5678",  # a prefix that is not the old mobile 1
        "52 55 1234 5678",  # a country code needs its +
        "+1 212 555 0100",  # other countries
        "+593 2 234 5678",  # an Ecuadorian landline: no SMS
        "02 234 5678",
        "+593 99 123 456",
        "55 1234 5678 ext 2",
        "55-1234-5678\nBcc",
        "５５１２３４５６７８",  # full-width digits
        "+52 5" + " " * 40 + "5 1234 5678",  # absurdly long
        "+52 55 1234 5678" + "0" * 40,
    ],
)
def test_numbers_that_are_not_mexican_or_ecuadorian_mobiles_are_refused(sms_app, typed):
    app = sms_app()
    with app.app_context():
        with pytest.raises(ValueError):
            queue_sms(db.session, typed, CODE)
        db.session.commit()
    assert rows(app) == []


# --- Texts: GSM-7 or UCS-2, at most three messages ------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("Su codigo es 123456", "GSM-7", 1),
        (CODE, "UCS-2", 1),  # ó is not in the GSM alphabet
        ("Niño, ¿qué? ¡Ya!", "GSM-7", 1),  # ñ, é, ¿ and ¡ are
        ("Niño, ¿qué? ¡Sí!", "UCS-2", 1),  # í is not
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("a" * 459, "GSM-7", 3),
        ("a" * 460, "GSM-7", 4),
        ("€" * 80, "GSM-7", 1),  # the extension table counts two
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),  # an escape pair is never split
        ("ó" * 70, "UCS-2", 1),
        ("ó" * 71, "UCS-2", 2),
        ("ó" * 201, "UCS-2", 3),
        ("ó" * 202, "UCS-2", 4),
        ("😀" * 35, "UCS-2", 1),  # two UTF-16 units each
        ("😀" * 36, "UCS-2", 2),
        ("ó" * 66 + "😀" + "ó" * 66, "UCS-2", 3),  # a surrogate pair is never split
    ],
)
def test_segments_count_the_messages_a_text_takes(text, encoding, count):
    found = segments(text)
    assert (found.encoding, found.count) == (encoding, count)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("a" * 459, False),
        ("a" * 460, True),
        ("ó" * 201, False),
        ("ó" * 202, True),
        ("", True),
        (" \n ", True),
        ("Su código\x00 es 1", True),
        ("Su código\x1b es 1", True),
        ("Línea 1\nLínea 2", False),
    ],
)
def test_texts_longer_than_three_messages_are_refused(sms_app, text, refused):
    app = sms_app()
    with app.app_context():
        if refused:
            with pytest.raises(ValueError):
                queue_sms(db.session, "5512345678", text)
        else:
            queue_sms(db.session, "5512345678", text)
        db.session.commit()
    assert len(rows(app)) == (0 if refused else 1)


def test_the_text_is_kept_without_surrounding_blanks(sms_app):
    app = sms_app()
    queue(app, text="\n  Su código es 123456 \n")
    assert rows(app)[0].text == "Su código es 123456"


# --- The worker and the file transport -------------------------------------------------------


def test_worker_writes_one_file_per_message_and_records_it_sent(sms_app, tmp_path):
    app = sms_app(SMS_FROM="Autofactura")
    first, second = queue(app, count=2)
    t0 = utcnow()
    assert send_due(app, t0) == 2
    assert send_due(app, t0 + timedelta(hours=1)) == 0  # each once

    written = files(tmp_path)
    assert [f["id"] for f in written] == [first, second]
    assert written[0] | {"queued_at": None, "sent_at": None} == {
        "id": first,
        "to": "+525512345678",
        "from": "Autofactura",
        "text": CODE,
        "encoding": "UCS-2",
        "segments": 1,
        "queued_at": None,
        "sent_at": None,
    }
    for row in rows(app):
        assert row.status == SmsStatus.SENT and row.sent_at == t0
        assert row.attempts == 1 and row.locked_until is None
        assert re.fullmatch(rf"\d{{8}}T\d{{6}}\.\d{{6}}Z-{row.id}\.json", row.provider_id)
        assert (tmp_path / "sms" / row.provider_id).is_file()


def test_a_worker_whose_lease_ran_out_does_not_send_again(sms_app, tmp_path):
    app = sms_app(SMS_LEASE_SECONDS=30)
    queue(app)
    t0 = utcnow()
    with app.app_context():  # a slow worker claims the message ...
        [stale] = claim(db.session, app.config, t0, set())
    # ... its lease runs out, another worker takes the message over and sends it ...
    assert send_due(app, t0 + timedelta(seconds=31)) == 1
    # ... and the slow worker, getting to it at last, leaves it alone.
    with app.app_context():
        late = deliver(db.session, FileTransport(tmp_path / "sms"), app.config, stale, t0)
    assert late is False
    assert len(files(tmp_path)) == 1
    assert rows(app)[0].status == SmsStatus.SENT


def test_a_file_transport_that_cannot_write_is_retried(sms_app, tmp_path):
    (tmp_path / "sms").write_text("a file where the directory should be")
    app = sms_app(SMS_RETRY_SECONDS=10)
    queue(app)
    t0 = utcnow()
    assert send_due(app, t0) == 0
    [row] = rows(app)
    assert (row.status, row.attempts) == (SmsStatus.PENDING, 1)
    assert row.next_attempt_at == t0 + timedelta(seconds=10)
    assert "FileExistsError" in row.last_error or "NotADirectoryError" in row.last_error

    (tmp_path / "sms").unlink()
    assert send_due(app, t0 + timedelta(seconds=10)) == 1
    assert rows(app)[0].status == SmsStatus.SENT


# --- /dev/sms ----------------------------------------------------------------------------------


def test_dev_sms_is_not_found_when_disabled(sms_app, tmp_path):
    app = sms_app(DEBUG=False, DEV_MAILBOX=False)
    queue(app)
    assert send_due(app) == 1
    [name] = [p.name for p in (tmp_path / "sms").glob("*.json")]
    client = app.test_client()
    for url in ("/dev/sms", f"/dev/sms/{name}"):
        response = client.get(url)
        assert response.status_code == 404
        assert "123456" not in response.get_data(as_text=True)


@pytest.mark.parametrize("flag", ["DEBUG", "DEV_MAILBOX"])
def test_dev_sms_lists_and_shows_the_messages(sms_app, flag):
    app = sms_app(**{"DEBUG": False, "DEV_MAILBOX": False, flag: True, "SMS_FROM": "+15005550006"})
    queue(app, "55 1111 2222", "Su código de verificación es 111111")
    queue(app, "+593 99 123 4567", "Su código es 222222 <script>alert(1)</script>")
    assert send_due(app) == 2
    client = app.test_client()

    listing = client.get("/dev/sms")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert "SMS de desarrollo" in html
    assert html.index("222222") < html.index("111111")  # newest first
    assert "+525511112222" in html and "+593991234567" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html

    link = re.findall(r'<a href="(/dev/sms/[^"]+\.json)">', html)[-1]  # the oldest: 111111
    page = client.get(link)
    assert page.status_code == 200
    shown = page.get_data(as_text=True)
    assert "Su código de verificación es 111111" in shown
    assert "+525511112222" in shown and "+15005550006" in shown  # To and From
    assert "UCS-2" in shown
    assert "<style" not in shown and " style=" not in shown


def test_dev_sms_serves_nothing_outside_its_files(sms_app, tmp_path):
    app = sms_app(DEV_MAILBOX=True)
    queue(app)
    assert send_due(app) == 1
    secret_name = "20250101T000000.000000Z-1.json"
    (tmp_path / secret_name).write_text(json.dumps({"to": "+525500000000", "text": "SECRETO"}))
    (tmp_path / "sms" / "notas.json").write_text(json.dumps({"text": "NOTAS"}))
    (tmp_path / "sms" / "20250101T000000.000000Z-7.json").write_text("{not json")
    client = app.test_client()

    for url in (
        f"/dev/sms/..%2F{secret_name}",
        f"/dev/sms/%2e%2e%2f{secret_name}",
        f"/dev/sms/../{secret_name}",
        "/dev/sms/..",
        "/dev/sms/notas.json",
        "/dev/sms/20250101T000000.000000Z-999.json",  # well formed, but no such file
        "/dev/sms/20250101T000000.000000Z-7.json",  # not a message
    ):
        response = client.get(url)
        body = response.get_data(as_text=True)
        assert response.status_code == 404, url
        assert "SECRETO" not in body and "NOTAS" not in body
    listing = client.get("/dev/sms")
    assert listing.status_code == 200
    assert "NOTAS" not in listing.get_data(as_text=True)
    assert CODE in listing.get_data(as_text=True)


def test_dev_sms_explains_when_sms_go_to_a_provider(make_app):
    url = f"twilio://{SID}:{TOKEN}@api.twilio.com?from=%2B15005550006"
    client = make_app(DEV_MAILBOX=True, SMS_URL=url).test_client()
    response = client.get("/dev/sms")
    assert response.status_code == 200
    assert "no escribe archivos" in response.get_data(as_text=True)


# --- SMS_URL and the other settings, checked at start ------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file://instance/sms", FileTransport(ROOT / "instance" / "sms")),
        ("file:///var/spool/autofactura-sms", FileTransport(Path("/var/spool/autofactura-sms"))),
        (
            f"twilio://{SID}:{TOKEN}@api.twilio.com?from=%2B5215550000000",
            TwilioTransport("https://api.twilio.com", SID, TOKEN, SID, "+5215550000000", 3.0, 7.0),
        ),
        (
            f"twilio://SK{'f' * 32}:{TOKEN}@api.twilio.com?account={SID}&from=Autofactura",
            TwilioTransport(
                "https://api.twilio.com", "SK" + "f" * 32, TOKEN, SID, "Autofactura", 3.0, 7.0
            ),
        ),
        (
            f"twilio+http://{SID}:{TOKEN}@127.0.0.1:8099",
            TwilioTransport("http://127.0.0.1:8099", SID, TOKEN, SID, None, 3.0, 7.0),
        ),
    ],
)
def test_sms_url_names_the_transport(url, expected):
    transport = transport_from_url(url, connect_timeout=3, read_timeout=7)
    assert transport == expected
    assert TOKEN not in transport.describe() and TOKEN not in repr(transport)


def test_twilio_endpoint_is_the_messages_api_of_the_account():
    transport = transport_from_url(f"twilio://{SID}:{TOKEN}@api.twilio.com?from=%2B15005550006")
    assert transport.endpoint == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SMS_URL": "ftp://sms.example.com"}, "SMS_URL"),
        ({"SMS_URL": "api.twilio.com"}, "SMS_URL"),
        ({"SMS_URL": "file://"}, "SMS_URL"),
        ({"SMS_URL": f"twilio://{SID}:{TOKEN}@?from=%2B15005550006"}, "SMS_URL"),
        ({"SMS_URL": f"twilio://{SID}@api.twilio.com?from=%2B15005550006"}, "SMS_URL"),
        ({"SMS_URL": f"twilio://{SID}:{TOKEN}@api.twilio.com"}, "sender"),  # no from, no SMS_FROM
        ({"SMS_URL": f"twilio://{SID}:{TOKEN}@api.twilio.com?from=+5215550000000"}, "SMS_URL"),
        ({"SMS_URL": f"twilio://{SID}:{TOKEN}@api.twilio.com?de=%2B15005550006"}, "SMS_URL"),
        ({"SMS_URL": f"twilio://x:{TOKEN}@api.twilio.com?from=%2B15005550006"}, "SMS_URL"),
        ({"SMS_URL": f"twilio://{SID}:{TOKEN}@api.twilio.com:99999?from=Tienda"}, "SMS_URL"),
        # plain http only to loopback: a token never crosses a network in clear
        ({"SMS_URL": f"twilio+http://{SID}:{TOKEN}@api.twilio.com?from=Tienda"}, "loopback"),
        ({"SMS_URL": f"twilio+http://{SID}:{TOKEN}@10.0.0.8:80?from=Tienda"}, "loopback"),
        ({"SMS_FROM": "+52 55 1234"}, "SMS_FROM"),
        ({"SMS_FROM": "Una tienda muy grande"}, "SMS_FROM"),
        ({"SMS_MAX_ATTEMPTS": 0}, "SMS_MAX_ATTEMPTS"),
        ({"SMS_RETRY_SECONDS": 0}, "SMS_RETRY_SECONDS"),
        ({"SMS_TIMEOUT_SECONDS": 0}, "SMS_TIMEOUT_SECONDS"),
        ({"SMS_CONNECT_TIMEOUT_SECONDS": -1}, "SMS_CONNECT_TIMEOUT_SECONDS"),
        ({"SMS_LEASE_SECONDS": 20, "SMS_TIMEOUT_SECONDS": 20}, "SMS_LEASE_SECONDS"),
    ],
)
def test_the_app_refuses_to_start_with_sms_settings_that_cannot_work(make_app, overrides, named):
    with pytest.raises(RuntimeError, match=named) as refused:
        make_app(**overrides)
    assert TOKEN not in str(refused.value)  # the token never reaches a log


# --- flask sms ... ---------------------------------------------------------------------------


def test_send_test_queues_a_message_the_worker_delivers(sms_app, tmp_path):
    app = sms_app()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sms", "send-test", "+52 55 8765 4321"])
    assert result.exit_code == 0, result.output
    [row] = rows(app)
    assert f"#{row.id} to +525587654321" in result.output and "flask sms worker" in result.output
    assert files(tmp_path) == []  # only queued: the worker delivers it

    worker = runner.invoke(args=["sms", "worker", "--once"])
    assert worker.exit_code == 0, worker.output
    assert "1 SMS sent." in worker.output
    [written] = files(tmp_path)
    assert written["to"] == "+525587654321" and "mensaje de prueba" in written["text"]
    assert written["segments"] == 1 and written["encoding"] == "GSM-7"

    status = runner.invoke(args=["sms", "status"])
    assert status.exit_code == 0
    assert "sent     1" in status.output and "pending  0" in status.output


def test_send_test_refuses_a_bad_number(sms_app):
    app = sms_app()
    result = app.test_cli_runner().invoke(args=["sms", "send-test", "12345"])
    assert result.exit_code == 2
    assert "NUMBER" in result.output
    assert rows(app) == []
