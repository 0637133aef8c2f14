"""A services issuer's page, its registration form as in seed 002, the Activar Cuenta email and
the issuer's terms: accepted at registration, and a new version at the next visit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.flows import GOOD_PASSWORD, RFC, registered_account, sign_in, solved_captcha
from webapp.extensions import db
from webapp.models import Account, Issuer, MailMessage, ServiceTerms, TermsAcceptance

EMAIL = "lucia@example.com"
PASSWORD = GOOD_PASSWORD["modern"]


def form_data(**changes) -> dict:
    data = {
        "email": EMAIL,
        "given_names": "Lucía Fernanda",
        "surnames": "Ordóñez Peña",
        "rfc": RFC,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "accept_terms": "y",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post_form(app, client, slug, **changes):
    """Open the form and send it as a person would (the captcha read off the page)."""
    page = client.get(f"/servicios/{slug}/registro")
    assert page.status_code == 200
    return client.post(
        f"/servicios/{slug}/registro",
        data={**form_data(**changes), **solved_captcha(app, page.get_data(as_text=True))},
    )


def outbox(app):
    with app.app_context():
        return [
            (m.to_addrs, m.subject, m.body_text, m.body_html)
            for m in db.session.scalars(select(MailMessage).order_by(MailMessage.id))
        ]


def activation_link(body: str) -> str:
    return re.search(r"http://localhost(/servicios/[^/]+/activar/\S+)", body).group(1)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def slug(telecom):
    return telecom["slug"]


def test_landing_offers_sign_in_and_registration(client, slug):
    page = client.get(f"/servicios/{slug}/").get_data(as_text=True)
    assert "Bienvenido a INDISTRIA ILUMINADORA DE ALMACENES" in page
    assert "/cuenta/entrar?next=/servicios/telcel-demo/mis-servicios" in page
    assert f'href="/servicios/{slug}/registro"' in page and "¿Nuevo? Regístrate aquí" in page
    assert f'href="/marca/{slug}.css' in page  # the issuer's colour
    assert client.get("/servicios/nadie/").status_code == 404


def test_home_lists_services_issuers_apart(client, demo, slug):
    home = client.get("/").get_data(as_text=True)
    services = home[home.index("<h2>Mis servicios</h2>") :]
    assert f'href="/servicios/{slug}/"' in services
    assert "/facturar/telcel-demo/" not in home  # not among the merchants


def test_form_has_the_seeds_fields(client, slug):
    page = client.get(f"/servicios/{slug}/registro").get_data(as_text=True)
    labels = re.findall(r'<label for="([^"]+)">([^<]+)</label>', page)
    assert labels[:6] == [
        ("email", "Correo electrónico"),
        ("given_names", "Nombres"),
        ("surnames", "Apellidos"),
        ("rfc", "RFC"),
        ("password", "Contraseña"),
        ("password_confirm", "Confirmar contraseña"),
    ]
    assert "Escribe el código de la imagen" in page and 'name="captcha_token"' in page
    assert "He leído y acepto los" in page
    assert f'href="/servicios/{slug}/terminos/texto"' in page
    assert ">CONTINUAR</button>" in page
    assert "Cédula/Pasaporte" not in page
    terms = client.get(f"/servicios/{slug}/terminos/texto").get_data(as_text=True)
    assert "Términos y Condiciones del Servicio (versión 2026-01)" in terms


def test_ecuador_asks_for_cedula_or_passport(app, client, slug):
    with app.app_context():
        db.session.scalar(select(Issuer).where(Issuer.slug == slug)).country = "EC"
        db.session.commit()
    page = client.get(f"/servicios/{slug}/registro").get_data(as_text=True)
    assert '<label for="id_document">Cédula/Pasaporte</label>' in page and 'id="rfc"' not in page
    bad = post_form(app, client, slug, rfc=None, id_document="1714307104")
    assert bad.status_code == 422 and "Ese número de cédula no es válido" in bad.get_data(
        as_text=True
    )
    r = post_form(app, client, slug, rfc=None, id_document="1714307103")
    assert r.status_code == 303
    with app.app_context():
        account = db.session.scalars(select(Account)).one()
        assert (account.id_document, account.rfc) == ("1714307103", "XEXX010101000")
    [(_to, _subject, body, _html)] = outbox(app)
    assert "Cédula/Pasaporte: 1714307103" in body and "RFC" not in body
    passport = post_form(app, client, slug, email="b@example.com", rfc=None, id_document="ab 12345")
    assert passport.status_code == 303


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "no-es-correo"}, "email", "Escriba un correo electrónico válido"),
        ({"given_names": ""}, "given_names", "Escriba sus nombres."),
        ({"surnames": "www.spam.example"}, "surnames", "Escriba solo letras"),
        ({"rfc": "XOJI740919U4"}, "rfc", "El RFC"),
        ({"password": "corta", "password_confirm": "corta"}, "password", "al menos 12"),
        ({"password_confirm": "otra cosa"}, "password_confirm", "Las contraseñas no coinciden."),
        ({"accept_terms": None}, "accept_terms", "acepte los Términos y Condiciones"),
    ],
)
def test_errors_are_shown_next_to_their_field(app, client, slug, changes, field, message):
    r = post_form(app, client, slug, **changes)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    wrapper = page[page.index(f'id="campo-{field}"') :]
    wrapper = wrapper[: wrapper.index("</div>")]
    assert message in wrapper and f'id="{field}-error"' in wrapper
    assert PASSWORD not in page  # the password is never written back
    assert outbox(app) == []


def test_inline_check_of_one_field(app, client, slug):
    r = client.post(
        f"/servicios/{slug}/registro",
        data=form_data(rfc="XOJI740919U4"),
        headers={"HX-Request": "true", "HX-Target": "campo-rfc"},
    )
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<div class="field invalid" id="campo-rfc"')
    good = client.post(
        f"/servicios/{slug}/registro",
        data=form_data(),
        headers={"HX-Request": "true", "HX-Target": "campo-given_names"},
    ).get_data(as_text=True)
    assert 'id="campo-given_names"' in good and "field-error" not in good
    other = client.post(
        f"/servicios/{slug}/registro",
        data=form_data(),
        headers={"HX-Request": "true", "HX-Target": "campo-password"},
    )
    assert other.status_code == 404  # passwords are checked on CONTINUAR only
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Account)) == 0


def test_captcha_is_required(app, client, slug):
    page = client.get(f"/servicios/{slug}/registro").get_data(as_text=True)
    token = solved_captcha(app, page)["captcha_token"]
    for extra in ({}, {"captcha_token": token, "captcha": "00000000"}):
        r = client.post(f"/servicios/{slug}/registro", data={**form_data(), **extra})
        assert r.status_code == 422
        assert "El código no coincide con la imagen" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Account)) == 0


def test_register_activate_once_then_sign_in(app, client, slug, telecom):
    r = post_form(app, client, slug, email="Lucia@Example.com")
    assert r.status_code == 303
    sent = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Revise su correo" in sent and EMAIL in sent
    [(to, subject, body, html)] = outbox(app)
    assert to == EMAIL
    assert subject == "Activa tu cuenta de INDISTRIA ILUMINADORA DE ALMACENES"
    for line in (
        f"Correo electrónico: {EMAIL}",
        "Nombres: Lucía Fernanda",
        "Apellidos: Ordóñez Peña",
        f"RFC: {RFC}",
    ):
        assert line in body
    assert PASSWORD not in body and PASSWORD not in html
    link = activation_link(body)
    assert f'href="http://localhost{link}"' in html and "Activar Cuenta</a>" in html
    with app.app_context():
        account = db.session.scalars(select(Account)).one()
        assert account.password_hash.startswith("$argon2id$") and not account.verified
        assert (account.given_names, account.surnames, account.rfc) == (
            "Lucía Fernanda",
            "Ordóñez Peña",
            RFC,
        )
        [acceptance] = db.session.scalars(select(TermsAcceptance)).all()
        terms = db.session.get(ServiceTerms, acceptance.terms_id)
        assert acceptance.account_id == account.id and terms.version == "2026-01"
        assert acceptance.accepted_at > datetime.now(UTC) - timedelta(minutes=1)
    # Before activation the account cannot sign in.
    assert sign_in(client, EMAIL, PASSWORD).status_code == 401
    shown = client.get(link)  # a mail scanner opening the link spends nothing
    assert shown.status_code == 200 and ">Activar Cuenta</button>" in shown.get_data(as_text=True)
    r = client.post(link)
    assert r.status_code == 303 and r.headers["Location"] == f"/servicios/{slug}/"
    assert "Su cuenta está activa" in client.get(r.headers["Location"]).get_data(as_text=True)
    assert client.post(link).status_code == 410  # single use
    assert client.get(link).status_code == 410
    r = sign_in(client, EMAIL, PASSWORD)
    assert r.status_code == 303
    # Signed in, the issuer's page goes straight on to Mis servicios.
    r = client.get(f"/servicios/{slug}/")
    assert r.status_code == 303 and r.headers["Location"] == f"/servicios/{slug}/mis-servicios"


def test_a_registered_address_gets_the_same_answer(app, client, slug):
    registered_account(app)  # Ingrid's complete account (/cuenta/registro)
    new = post_form(app, client, slug)
    known = post_form(app, app.test_client(), slug, email="ingrid@example.com")
    assert new.status_code == known.status_code == 303
    assert new.headers["Location"].replace("lucia", "X") == known.headers["Location"].replace(
        "ingrid", "X"
    )
    mails = outbox(app)
    assert [m[0] for m in mails] == [EMAIL, "ingrid@example.com"]
    assert "ya tiene una cuenta" in mails[1][1] and "/activar/" not in mails[1][2]
    with app.app_context():
        ingrid = db.session.scalar(select(Account).where(Account.email == "ingrid@example.com"))
        assert ingrid.given_names is None  # the form changed nothing of it
        assert db.session.scalar(select(func.count()).select_from(Account)) == 2
    # Registering again while unactivated: the same page, no second email so soon.
    again = post_form(app, app.test_client(), slug)
    assert again.status_code == 303 and len(outbox(app)) == 2


def test_registration_is_rate_limited(make_app, telecom):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_EMAIL_IP="2/minute", CAPTCHA="off")
    client = app.test_client()
    slug = telecom["slug"]
    for n in range(2):
        r = client.post(f"/servicios/{slug}/registro", data=form_data(email=f"p{n}@example.com"))
        assert r.status_code == 303
    inline = client.post(
        f"/servicios/{slug}/registro",
        data=form_data(),
        headers={"HX-Request": "true", "HX-Target": "campo-email"},
    )
    assert inline.status_code == 200  # inline checks send nothing and do not count
    r = client.post(f"/servicios/{slug}/registro", data=form_data(email="p3@example.com"))
    assert r.status_code == 429 and "Demasiados intentos" in r.get_data(as_text=True)


def test_a_new_version_of_the_terms_is_accepted_at_the_next_visit(app, client, slug, telecom):
    post_form(app, client, slug)
    client.post(activation_link(outbox(app)[0][2]))
    assert sign_in(client, EMAIL, PASSWORD).status_code == 303
    home = f"/servicios/{slug}/mis-servicios"
    assert client.get(home).status_code == 200
    with app.app_context():
        db.session.add(
            ServiceTerms(
                issuer_id=telecom["issuer_id"],
                version="2026-07",
                body="Términos versión 2026-07: cláusula nueva.",
                published_at=datetime.now(UTC),
            )
        )
        db.session.commit()
    r = client.get(home)
    assert r.status_code == 303
    asked = r.headers["Location"]
    assert asked.startswith(f"/servicios/{slug}/terminos?next=")
    page = client.get(asked).get_data(as_text=True)
    assert "cláusula nueva" in page and ">Acepto</button>" in page
    terms_id = re.search(r'name="terms" type="hidden" value="(\d+)"', page).group(1)
    r = client.post(asked, data={"terms": terms_id})
    assert r.status_code == 303 and r.headers["Location"] == home
    assert client.get(home).status_code == 200
    with app.app_context():
        versions = db.session.execute(
            select(ServiceTerms.version, TermsAcceptance.accepted_at)
            .join(ServiceTerms, ServiceTerms.id == TermsAcceptance.terms_id)
            .order_by(TermsAcceptance.id)
        ).all()
        assert [v for v, _at in versions] == ["2026-01", "2026-07"]
        assert all(at is not None for _v, at in versions)


def test_terms_page_goes_only_to_local_paths_and_needs_the_shown_version(
    app, client, slug, telecom
):
    post_form(app, client, slug)
    client.post(activation_link(outbox(app)[0][2]))
    sign_in(client, EMAIL, PASSWORD)
    with app.app_context():
        newer = ServiceTerms(
            issuer_id=telecom["issuer_id"],
            version="2026-08",
            body="Otra versión.",
            published_at=datetime.now(UTC),
        )
        db.session.add(newer)
        db.session.commit()
        newer_id = newer.id
    url = f"/servicios/{slug}/terminos?next=https://evil.example/"
    stale = client.post(url, data={"terms": str(newer_id - 1)})
    assert stale.status_code == 409 and "Otra versión." in stale.get_data(as_text=True)
    r = client.post(url, data={"terms": str(newer_id)})
    assert r.status_code == 303 and r.headers["Location"] == f"/servicios/{slug}/mis-servicios"
    signed_out = app.test_client().get(f"/servicios/{slug}/terminos")
    assert signed_out.status_code == 303 and "/cuenta/entrar" in signed_out.headers["Location"]
