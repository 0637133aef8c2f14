"""Template helpers shared by every page."""

from __future__ import annotations

from flask import Flask, current_app


def _ui() -> dict:
    """`ui`: the macros of templates/_ui.html (form fields, steps, help).

    A context variable rather than a `{% from %}` import, so that a block rendered alone as
    an htmx fragment sees them too. The template module is built once and cached by Jinja.
    """
    return {"ui": current_app.jinja_env.get_template("_ui.html").module}


def init_app(app: Flask) -> None:
    app.context_processor(_ui)
