"""The one sign-in (webapp.security.signin) at both doors, customers' and staff's: the same
checks in the same order, the same audit, the same cost whether or not the identifier is
known, and sessions that end on the server when their owner signs out."""

from __future__ import annotations

import statistics
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from tests.flows import PASSWORD, RFC, sign_in, solved_captcha, verified_account
from webapp.admin.staff import create_staff
from webapp.extensions import db
from webapp.models import Account, AuditEvent, StaffMember, StaffRole
from webapp.security import passwords

STAFF_EMAIL = "operadora@example.com"
CUSTOMER_EMAIL = "ingrid@example.com"


@pytest.fixture
def people(app):
    """A verified customer (RFC, CUSTOMER_EMAIL) and a staff member (STAFF_EMAIL), both
    with the password PASSWORD."""
    with app.app_context():
        verified_account(RFC, CUSTOMER_EMAIL)
        create_staff(db.session, STAFF_EMAIL, StaffRole.OPERATOR, password=PASSWORD)
        db.session.commit()


DOORS = {
    # door: (sign-in URL, identifier field, a known identifier, the model)
    "customer": ("/cuenta/entrar", "identifier", RFC, Account),
    "staff": ("/admin/entrar", "email", STAFF_EMAIL, StaffMember),
}


def attempt(client, door: str, identifier: str, password: str, *, solve: bool = True):
    """One try at `door`, as a person: the captcha, when the page shows one, is answered."""
    url, field, _known, _model = DOORS[door]
    page = client.get(url).get_data(as_text=True)
    extra = solved_captcha(client.application, page) if solve else {}
    return client.post(url, data={field: identifier, "password": password, **extra})


def failures_of(app, door: str) -> int:
    _url, _field, known, model = DOORS[door]
    column = model.rfc if model is Account else model.email
    with app.app_context():
        return db.session.scalar(select(model.failed_logins).where(column == known))


@pytest.mark.parametrize("door", DOORS)
def test_unknown_identifiers_are_audited_at_every_door(app, people, door):
    """A failed sign-in with an identifier that names nobody is recorded, at both doors (the
    staff door used to drop it)."""
    with app.app_context():
        before = db.session.scalar(select(func.count()).where(AuditEvent.event == "signin_failed"))
    r = attempt(app.test_client(), door, "nadie@example.com", "lo que sea")
    assert r.status_code == 401
    with app.app_context():
        after = db.session.scalar(select(func.count()).where(AuditEvent.event == "signin_failed"))
    assert after == before + 1


@pytest.mark.parametrize("door", DOORS)
def test_a_subject_with_failures_needs_the_captcha_in_any_browser(make_app, people, door):
    """After a failure on the account, a fresh browser that does not answer the captcha is
    refused like a wrong password even with the right password, at both doors; the failure
    is not counted twice; answering the captcha lets the owner in."""
    app = make_app(CAPTCHA="on")
    known = DOORS[door][2]
    assert attempt(app.test_client(), door, known, "incorrecta").status_code == 401
    assert failures_of(app, door) == 1
    fresh = app.test_client()
    r = attempt(fresh, door, known, PASSWORD, solve=False)
    assert r.status_code == 401
    assert failures_of(app, door) == 1
    # The page now shows the captcha in that browser; answered, the right password works.
    r = attempt(fresh, door, known, PASSWORD)
    assert r.status_code == 303
    assert failures_of(app, door) == 0


@pytest.mark.parametrize("door", DOORS)
def test_locked_is_told_the_same_way_at_every_door(make_app, people, door):
    app = make_app(SECURITY_PRESET="seed")  # the seed locks at the third failure
    known = DOORS[door][2]
    attacker = app.test_client()  # answers the captcha the page shows after a failure
    for _ in range(3):
        assert attempt(attacker, door, known, "incorrecta").status_code == 401
    r = attempt(app.test_client(), door, known, PASSWORD)
    assert r.status_code == 423


class CountingHasher(PasswordHasher):
    def __init__(self):
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash, password):  # noqa: A002 (argon2-cffi's own name)
        self.verifications += 1
        return super().verify(hash, password)


@pytest.mark.parametrize("door", DOORS)
def test_every_attempt_costs_one_argon2_verification(make_app, people, door, monkeypatch):
    """Unknown identifier, known one with a wrong password, known one that needs the
    captcha: each costs exactly one argon2 verification, so none answers sooner."""
    app = make_app(CAPTCHA="on")
    hasher = CountingHasher()
    monkeypatch.setattr(passwords, "_hasher", hasher)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", hasher.hash("no such account"))
    known = DOORS[door][2]
    for identifier, password in [
        ("nadie@example.com", "x"),  # unknown
        (known, "incorrecta"),  # known, wrong password
        (known, PASSWORD),  # known, now needs the captcha, which a fresh browser lacks
    ]:
        before = hasher.verifications
        r = attempt(app.test_client(), door, identifier, password, solve=False)
        assert r.status_code == 401
        assert hasher.verifications == before + 1, identifier


@pytest.mark.argon2_production
def test_no_timing_oracle_between_known_and_unknown_accounts(make_app, people):
    """Medians over 30 tries each, interleaved so that the machine's load falls on both
    alike: an account that needs the captcha answers no sooner than an unknown one (before,
    22 ms against 781 ms), with the production argon2 parameters."""
    app = make_app(CAPTCHA="on")
    with app.app_context():  # the production parameters for the account's hash too
        account = db.session.scalar(select(Account).where(Account.rfc == RFC))
        account.password_hash = passwords.hash_password(PASSWORD)
        db.session.commit()
    assert sign_in(app.test_client(), RFC, "incorrecta").status_code == 401  # one failure

    def timed(identifier: str) -> float:
        client = app.test_client()
        client.get("/cuenta/entrar")
        started = time.perf_counter()
        r = client.post("/cuenta/entrar", data={"identifier": identifier, "password": "x"})
        elapsed = time.perf_counter() - started
        assert r.status_code == 401
        return elapsed

    known, unknown = [], []
    for _ in range(30):
        known.append(timed(RFC))
        unknown.append(timed("CACX7605101P8"))
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.5 < ratio < 2, (statistics.median(known), statistics.median(unknown))


def replay(app, cookie: str):
    """A new browser holding a copy of another's session cookie."""
    thief = app.test_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    return thief


def session_cookie(app, client) -> str:
    return client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


def test_salir_ends_the_customer_session_on_the_server(app, people):
    client = app.test_client()
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    copied = session_cookie(app, client)
    assert replay(app, copied).get("/cuenta/").status_code == 200  # the copy works while open
    assert client.post("/cuenta/salir").status_code == 303
    r = replay(app, copied).get("/cuenta/")
    assert r.status_code == 302 and "/cuenta/entrar" in r.headers["Location"]


def test_salir_ends_the_staff_session_on_the_server(app, people, admin_login):
    client = app.test_client()
    admin_login(client, STAFF_EMAIL, PASSWORD)
    copied = session_cookie(app, client)
    assert replay(app, copied).get("/admin/emisores").status_code == 200
    assert client.post("/admin/salir").status_code == 303
    r = replay(app, copied).get("/admin/emisores")
    assert r.status_code == 303 and "/admin/entrar" in r.headers["Location"]


def test_customer_salir_leaves_the_staff_session_of_the_same_browser(app, people, admin_login):
    client = app.test_client()
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    admin_login(client, STAFF_EMAIL, PASSWORD)
    client.post("/cuenta/salir")
    assert client.get("/cuenta/").status_code == 302
    assert client.get("/admin/emisores").status_code == 200
