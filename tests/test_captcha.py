"""The self-hosted captcha: rendering, signed single-use tokens, routes, macro, setting."""

from __future__ import annotations

import io
import re
import time
import wave
from datetime import timedelta

import pytest
from flask import render_template_string
from itsdangerous import TimestampSigner
from PIL import Image
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.captcha import CaptchaUse
from webapp.security.captcha import check_config
from webapp.security.captcha.challenge import IMAGE_SIZE, answer_for, new_challenge
from webapp.security.captcha.store import (
    MAX_AGE,
    RETENTION,
    challenge_for,
    issue,
    normalise,
    verify,
)


@pytest.fixture
def captcha_app(make_app):
    def factory(**overrides):
        app = make_app(**overrides)
        if "captcha" not in app.blueprints:  # until create_app registers it
            from webapp.captcha import bp

            app.register_blueprint(bp)
        return app

    return factory


@pytest.fixture
def app(captcha_app):
    return captcha_app()


def _wav(data: bytes) -> wave.Wave_read:
    return wave.open(io.BytesIO(data), "rb")


def _duration(data: bytes) -> float:
    with _wav(data) as w:
        return w.getnframes() / w.getframerate()


# --- challenge (no Flask) ------------------------------------------------------------------


def test_answer_is_digits_of_the_asked_length_fixed_by_the_seed():
    for length in (1, 4, 5, 8, 10):
        c = new_challenge(length, seed=b"semilla")
        assert len(c.answer) == length and c.answer.isascii() and c.answer.isdigit()
        assert c.answer == answer_for(b"semilla", length)
    assert len({new_challenge(seed=i).answer for i in range(50)}) > 45
    with pytest.raises(ValueError):
        new_challenge(0)
    with pytest.raises(ValueError):
        new_challenge(11)


def test_same_seed_same_bytes_and_no_seed_is_random():
    a, b = new_challenge(seed=b"x" * 32), new_challenge(seed=b"x" * 32)
    assert (a.answer, a.image_png, a.audio_wav) == (b.answer, b.image_png, b.audio_wav)
    assert new_challenge(seed="texto").image_png == new_challenge(seed="texto").image_png
    assert new_challenge(seed=12345).audio_wav == new_challenge(seed=12345).audio_wav
    randoms = [new_challenge() for _ in range(5)]
    assert len({c.seed for c in randoms}) == 5
    assert len({c.image_png for c in randoms}) == 5


def test_images_are_small_valid_pngs_that_differ_by_seed():
    images = {new_challenge(seed=s).image_png for s in range(8)}
    assert len(images) == 8
    for png in images:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) < 15_000
        im = Image.open(io.BytesIO(png))
        im.verify()
        assert im.format == "PNG" and im.size == IMAGE_SIZE
    # long codes still fit the same box
    long = Image.open(io.BytesIO(new_challenge(10, seed=1).image_png))
    assert long.size == IMAGE_SIZE


def test_audio_is_a_small_wav_that_grows_with_the_length():
    c = new_challenge(seed=b"audio")
    assert c.audio_wav.startswith(b"RIFF") and c.audio_wav[8:12] == b"WAVE"
    with _wav(c.audio_wav) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 1, 8000)
        frames = w.readframes(w.getnframes())
    assert len(frames) == w.getnframes() > 0
    assert max(frames) - min(frames) > 100  # speech, not silence
    for seed in range(5):
        short = new_challenge(3, seed=seed).audio_wav
        five = new_challenge(5, seed=seed).audio_wav
        long = new_challenge(8, seed=seed).audio_wav
        assert _duration(short) < _duration(five) < _duration(long)
        assert len(five) < 120_000
        assert 3 < _duration(five) < 12
    assert new_challenge(seed=1).audio_wav != new_challenge(seed=2).audio_wav


def test_normalise_drops_spaces_and_reads_other_digits():
    assert normalise(" 12 345 ") == "12345"
    assert normalise("12\u00a0345\t") == "12345"
    assert normalise("12-345") == "12345"
    assert normalise("１２３４５") == "12345"  # full-width, from some phone keyboards
    assert normalise("12a45") == "12a45"
    assert normalise(None) == ""


# --- tokens ------------------------------------------------------------------------------


def _uses(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(CaptchaUse))


def test_right_answer_passes_once(app):
    with app.app_context():
        token, challenge = issue()
        assert len(challenge.answer) == 5
        assert verify(token, challenge.answer)
        assert not verify(token, challenge.answer)
    assert _uses(app) == 1


def test_wrong_answer_fails_and_spends_the_token(app):
    with app.app_context():
        token, challenge = issue()
        wrong = f"{(int(challenge.answer) + 1) % 100000:05d}"
        assert not verify(token, wrong)
        assert not verify(token, challenge.answer)
        token, challenge = issue()
        assert not verify(token, "")
        assert not verify(token, None)
        token, challenge = issue()
        assert not verify(token, challenge.answer[:-1])
        token, challenge = issue()
        assert not verify(token, challenge.answer + "0")


def test_answer_with_spaces_is_normalised(app):
    with app.app_context():
        token, challenge = issue()
        assert verify(token, "  " + " ".join(challenge.answer) + " ")


def test_tampered_and_foreign_tokens_fail(app, captcha_app):
    with app.app_context():
        token, challenge = issue()
        body, sig = token.rsplit(".", 1)
        # The first character: the last one of base64 carries padding bits that may not count.
        flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
        for bad in (f"{body}.{flipped}", token[1:], "x" + token, "", "nada", token + "."):
            assert not verify(bad, challenge.answer)
            assert challenge_for(bad) is None
    other = captcha_app(SECRET_KEY="otra-clave")
    with other.app_context():
        assert not verify(token, challenge.answer)
    with app.app_context():  # none of that spent it
        assert verify(token, challenge.answer)


def test_token_reveals_no_answer_and_renders_the_same_challenge(app):
    with app.app_context():
        token, challenge = issue()
        from webapp.security.captcha.store import _serializer

        nonce, length = _serializer().loads(token)
        assert length == 5 and challenge.answer not in nonce
        # the nonce alone (without the server's secret) is not the seed
        assert new_challenge(5, seed=nonce).seed != challenge.seed
        again = challenge_for(token)
        assert again.answer == challenge.answer and again.image_png == challenge.image_png


def test_expired_token_fails(app, monkeypatch):
    with app.app_context():
        token, challenge = issue()
        later = int(time.time()) + MAX_AGE + 5
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
        assert not verify(token, challenge.answer)
        assert challenge_for(token) is None
        assert verify(token, challenge.answer, max_age=MAX_AGE + 60)


def test_old_use_records_are_purged(app):
    with app.app_context():
        db.session.add(CaptchaUse(nonce="viejo", used_at=utcnow() - RETENTION - timedelta(1)))
        db.session.add(CaptchaUse(nonce="reciente", used_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        token, challenge = issue()
        assert verify(token, challenge.answer)
        nonces = set(db.session.scalars(select(CaptchaUse.nonce)))
    assert "viejo" not in nonces and "reciente" in nonces and len(nonces) == 2


def test_captcha_off_lets_everything_through(captcha_app):
    app = captcha_app(CAPTCHA="off")
    with app.app_context():
        assert verify(None, None)
        assert verify("basura", "123")


def test_configured_length(captcha_app):
    app = captcha_app(CAPTCHA_LENGTH=6)
    with app.app_context():
        token, challenge = issue()
        assert len(challenge.answer) == 6
        assert verify(token, challenge.answer)


# --- setting -----------------------------------------------------------------------------


def test_captcha_off_refused_outside_debug_and_testing():
    with pytest.raises(RuntimeError, match="CAPTCHA=off"):
        check_config({"CAPTCHA": "off", "DEBUG": False, "TESTING": False})
    with pytest.raises(RuntimeError, match="CAPTCHA=off"):
        check_config({"CAPTCHA": " OFF "})
    with pytest.raises(RuntimeError, match="unknown"):
        check_config({"CAPTCHA": "maybe", "TESTING": True})
    check_config({"CAPTCHA": "off", "DEBUG": True})
    check_config({"CAPTCHA": "off", "TESTING": True})
    check_config({"CAPTCHA": "on"})
    check_config({})


# --- routes ------------------------------------------------------------------------------


def test_image_and_audio_routes(app):
    client = app.test_client()
    with app.app_context():
        token, challenge = issue()
    png = client.get(f"/captcha/{token}.png")
    assert png.status_code == 200
    assert png.mimetype == "image/png"
    assert png.headers["Cache-Control"] == "no-store"
    assert png.data == challenge.image_png
    wav = client.get(f"/captcha/{token}.wav")
    assert wav.status_code == 200
    assert wav.mimetype in ("audio/wav", "audio/x-wav")
    assert wav.headers["Cache-Control"] == "no-store"
    assert wav.data == challenge.audio_wav
    # serving them does not spend the token
    with app.app_context():
        assert verify(token, challenge.answer)


def test_routes_404_for_bad_or_expired_tokens(app, monkeypatch):
    client = app.test_client()
    with app.app_context():
        token, _challenge = issue()
    for path in ("/captcha/nada.png", "/captcha/nada.wav", f"/captcha/{token[:-2]}.png"):
        assert client.get(path).status_code == 404
    later = int(time.time()) + MAX_AGE + 5
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert client.get(f"/captcha/{token}.png").status_code == 404
    assert client.get(f"/captcha/{token}.wav").status_code == 404


# --- macro -------------------------------------------------------------------------------

FORM = (
    '{% from "captcha/_field.html" import captcha_field %}'
    "<form>{{ captcha_field(token, errors, refresh_url) }}</form>"
)


def test_field_macro(app):
    with app.test_request_context("/entrar"):
        token, _challenge = issue()
        html = render_template_string(FORM, token=token, errors=[], refresh_url=None)
        assert f'src="/captcha/{token}.png"' in html
        assert 'alt="Código de verificación' in html
        assert f'<audio controls preload="none" src="/captcha/{token}.wav"' in html
        assert f'href="/captcha/{token}.wav" download' in html
        assert '<label for="captcha">Escriba los números de la imagen o del audio</label>' in html
        assert 'inputmode="numeric"' in html and 'autocomplete="off"' in html
        assert f'<input type="hidden" name="captcha_token" value="{token}">' in html
        assert '<a href="/entrar">Otro código</a>' in html
        assert 'aria-describedby="captcha-hint"' in html and "aria-invalid" not in html
        assert "<script" not in html and "style=" not in html
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers

        html = render_template_string(
            FORM, token=token, errors=["El código no coincide."], refresh_url="/entrar?otro=1"
        )
        assert 'aria-describedby="captcha-hint captcha-error"' in html
        assert 'aria-invalid="true"' in html
        assert (
            '<p class="field-error" id="captcha-error" role="alert">El código no coincide.' in html
        )
        assert '<a href="/entrar?otro=1">Otro código</a>' in html

        assert "<fieldset" not in render_template_string(
            FORM, token=None, errors=[], refresh_url=None
        )


def test_captcha_images_served_under_the_strict_csp(app):
    client = app.test_client()
    with app.app_context():
        token, _challenge = issue()
    response = client.get(f"/captcha/{token}.png")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp  # covers <audio src> (media-src) on the same origin
