"""The account pages in a real Chromium, under both security presets: register (inline check of
the confirmation), open the emailed link, choose a password, sign out, fail a sign-in, answer the
captcha, sign in. Once with JavaScript (htmx; no console errors, no CSP violations) and once
without it (plain forms)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import MailMessage
from webapp.security.captcha import store as captcha_store

pytestmark = pytest.mark.browser

RFC = "XOJI740919U48"
GOOD_PASSWORD = {"modern": "caballo bateria grapa correcta", "seed": "Caballo.Bateria7"}
# A password the preset refuses, and what the page must say is missing.
WEAK_PASSWORD = {
    "modern": ("password", ["Use al menos 12 caracteres", "Esa contraseña es de las más usadas"]),
    "seed": (
        "abcdefgh",
        [
            "Incluya al menos una letra mayúscula",
            "Incluya al menos un número",
            "Incluya al menos un signo de puntuación",
        ],
    ),
}
MISMATCH = "Los correos no coinciden"
WRONG = "El RFC, el correo o la contraseña no son correctos"
# Chromium logs a navigation answered with an error status as a console error. The pages that
# refuse a form say so with 401/422 on purpose; any other console error fails the test.
EXPECTED_STATUS = re.compile(
    r"^Failed to load resource: the server responded with a status of 4(01|22)\b"
)


@pytest.fixture(params=["modern", "seed"])
def preset(request):
    return request.param


@pytest.fixture
def app(make_app, preset):
    return make_app(SECURITY_PRESET=preset)


def unexpected_errors(page) -> list[str]:
    return [e for e in page.errors if not EXPECTED_STATUS.search(e)]


def refused_pages(page) -> list[str]:
    """The status codes of the refusals Chromium logged, in order."""
    return [
        EXPECTED_STATUS.search(e).group(0)[-3:] for e in page.errors if EXPECTED_STATUS.search(e)
    ]


def heading(page):
    return page.get_by_role("heading", level=1)


def mailbox_link(app, email: str, base: str) -> str:
    """The verification link of the newest email to `email`, as its owner would click it."""
    with app.app_context():
        bodies = db.session.scalars(
            select(MailMessage.body_text)
            .where(MailMessage.to_addrs == email)
            .order_by(MailMessage.id.desc())
        ).all()
    assert bodies, f"no email to {email}"
    path = re.search(r"https?://[^/\s]+(/cuenta/verificar/\S+)", bodies[0]).group(1)
    return base + path


def register(page, base: str, email: str, *, js: bool) -> None:
    page.goto(base + "/cuenta/registro")
    page.get_by_label("RFC", exact=True).fill(RFC)
    page.get_by_label("Correo electrónico", exact=True).fill(email)
    confirm = page.get_by_label("Confirmar correo electrónico")
    confirm.fill("otra." + email)
    if js:
        # Leaving the field checks it on the server and shows the message beside it, with no
        # page load.
        confirm.press("Tab")
        expect(confirm).to_have_accessible_description(re.compile(MISMATCH))
        expect(page.get_by_text(MISMATCH)).to_be_visible()
        assert page.url == base + "/cuenta/registro"
        confirm.fill(email)
        confirm.press("Tab")
        expect(page.get_by_text(MISMATCH)).to_have_count(0)
    else:
        page.get_by_role("button", name="Aceptar").click()
        expect(heading(page)).to_have_text("Registro de correo")
        expect(confirm).to_have_accessible_description(re.compile(MISMATCH))
        expect(page.get_by_text(MISMATCH)).to_be_visible()
        expect(page.get_by_label("RFC", exact=True)).to_have_value(RFC)  # kept for the fix
        confirm.fill(email)
    page.get_by_role("button", name="Aceptar").click()
    expect(heading(page)).to_have_text("Casi hemos terminado")
    expect(page.get_by_text(email)).to_be_visible()


def answer_secret_question(page) -> None:
    """The seed preset asks for a secret question with the password."""
    question = page.get_by_role("combobox", name="Pregunta secreta")
    if question.count():
        question.select_option("mascota")
        page.get_by_label("Respuesta").fill("Firulais")


def choose_password(page, app, preset: str, link: str) -> None:
    page.goto(link)
    expect(heading(page)).to_have_text("Elija su contraseña")
    weak, missing = WEAK_PASSWORD[preset]
    password = page.get_by_label("Contraseña", exact=True)
    password.fill(weak)
    page.get_by_label("Confirmar contraseña").fill(weak)
    answer_secret_question(page)
    page.get_by_role("button", name="Guardar y entrar").click()
    expect(heading(page)).to_have_text("Elija su contraseña")
    for message in missing:  # every problem listed, tied to the field
        expect(page.get_by_text(message)).to_be_visible()
        expect(password).to_have_accessible_description(re.compile(re.escape(message)))
    password.fill(GOOD_PASSWORD[preset])
    page.get_by_label("Confirmar contraseña").fill(GOOD_PASSWORD[preset])
    answer_secret_question(page)
    page.get_by_role("button", name="Guardar y entrar").click()
    expect(heading(page)).to_have_text("Mi cuenta")
    expect(page.get_by_text(RFC)).to_be_visible()


def sign_in_after_a_failure(page, app, preset: str, base: str, email: str) -> None:
    page.get_by_role("button", name="Cerrar sesión", exact=True).click()
    page.get_by_role("navigation").get_by_role("link", name="Entrar").click()
    expect(heading(page)).to_have_text("Entrar")
    captcha_image = page.get_by_role("img", name=re.compile("Código de verificación"))
    expect(captcha_image).to_have_count(0)  # no captcha before a failure

    page.get_by_label("RFC o correo electrónico").fill(RFC)
    page.get_by_label("Contraseña", exact=True).fill("no es mi contraseña")
    page.get_by_role("button", name="Entrar").click()
    expect(page.get_by_role("alert").filter(has_text=WRONG)).to_be_visible()
    expect(page.get_by_label("RFC o correo electrónico")).to_have_value("")
    expect(page.get_by_label("Contraseña", exact=True)).to_have_value("")

    # The captcha now: its image loads, its audio alternative is there.
    expect(captcha_image).to_be_visible()
    page.wait_for_load_state("load")
    assert captcha_image.evaluate("img => img.complete && img.naturalWidth") > 0
    image = page.request.get(base + captcha_image.get_attribute("src"))
    assert image.ok and image.headers["content-type"] == "image/png"
    assert image.body()[:8] == b"\x89PNG\r\n\x1a\n"
    audio = page.locator("audio")
    expect(audio).to_have_count(1)
    sound = page.request.get(base + audio.get_attribute("src"))
    assert sound.ok and sound.headers["content-type"] == "audio/wav"
    assert sound.body()[:4] == b"RIFF"

    # Read as a person would (the answer computed from the token, server-side).
    token = page.locator(f'input[name="{captcha_store.TOKEN_FIELD}"]').input_value()
    with app.test_request_context():
        answer = captcha_store.challenge_for(token).answer
    page.get_by_label("RFC o correo electrónico").fill(email.upper())
    page.get_by_label("Contraseña", exact=True).fill(GOOD_PASSWORD[preset])
    page.get_by_role("textbox", name=re.compile("Escriba los números")).fill(answer)
    page.get_by_role("button", name="Entrar").click()
    expect(heading(page)).to_have_text("Mi cuenta")


def test_register_verify_sign_out_and_in_with_captcha(app, preset, page, live_server):
    email = f"ingrid.{preset}@example.com"
    register(page, live_server, email, js=True)
    choose_password(page, app, preset, mailbox_link(app, email, live_server))
    sign_in_after_a_failure(page, app, preset, live_server, email)
    assert unexpected_errors(page) == []  # no console errors, no CSP violations
    # The weak password (422) and the wrong sign-in (401); the inline check answered 200.
    assert refused_pages(page) == ["422", "401"]


def test_the_same_without_javascript(app, preset, browser, live_server):
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    try:
        email = f"sin.js.{preset}@example.com"
        register(page, live_server, email, js=False)
        choose_password(page, app, preset, mailbox_link(app, email, live_server))
        sign_in_after_a_failure(page, app, preset, live_server, email)
        assert unexpected_errors(page) == []
        assert refused_pages(page) == ["422", "422", "401"]  # + the mismatching emails
    finally:
        context.close()
