"""One URL serves the full page or, to htmx, the fragment it swaps."""

from __future__ import annotations

from flask import Response, make_response, redirect, render_template, request
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render(template: str, block: str, status: int = 200, **context) -> Response:
    """Render `template` whole, or only `block` of it for an htmx request."""
    body = (
        render_block(template, block, **context)
        if is_htmx()
        else render_template(template, **context)
    )
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def redirect_any(url: str) -> Response:
    """A redirect that htmx follows as a whole-page navigation too (204 + HX-Redirect)."""
    if is_htmx():
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)
