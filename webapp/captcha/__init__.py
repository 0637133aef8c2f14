"""GET /captcha/<token>.png and .wav (the captcha itself is webapp.security.captcha)."""

from webapp.captcha.routes import bp  # noqa: F401
