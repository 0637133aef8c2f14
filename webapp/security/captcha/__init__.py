"""Self-hosted captcha with an audio alternative, for the sign-in and recovery forms.

challenge.py makes the digits, the PNG and the WAV (no Flask); store.py issues and verifies
signed, expiring, single-use tokens; the blueprint in webapp/captcha/ serves
/captcha/<token>.png and .wav; templates/captcha/_field.html has the `captcha_field` macro.

Setting CAPTCHA: "on" (default) or "off". Off is for development and tests only.
"""

from __future__ import annotations

CAPTCHA_VALUES = ("on", "off")


def check_config(config) -> None:
    """Refuse to start with a CAPTCHA setting that cannot be right, saying which and why."""
    value = str(config.get("CAPTCHA", "on")).strip().lower()
    if value not in CAPTCHA_VALUES:
        raise RuntimeError(f"CAPTCHA={config.get('CAPTCHA')!r} is unknown; choose 'on' or 'off'")
    if value == "off" and not (config.get("DEBUG") or config.get("TESTING")):
        raise RuntimeError(
            "CAPTCHA=off leaves sign-in and password recovery open to scripted guessing; "
            "it is allowed only with DEBUG or TESTING. Unset CAPTCHA (or set CAPTCHA=on)."
        )
