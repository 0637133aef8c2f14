"""GET /captcha/<token>.png and .wav: rendered again from the token, nothing stored."""

from __future__ import annotations

from flask import Blueprint, Response, abort

from webapp.security.captcha.store import challenge_for

bp = Blueprint("captcha", __name__, url_prefix="/captcha")


def _send(data: bytes, mimetype: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<token>.png")
def image(token: str) -> Response:
    challenge = challenge_for(token)
    if challenge is None:
        abort(404)
    return _send(challenge.image_png, "image/png")


@bp.get("/<token>.wav")
def audio(token: str) -> Response:
    challenge = challenge_for(token)
    if challenge is None:
        abort(404)
    return _send(challenge.audio_wav, "audio/wav")
