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


MAIN = "#contenido"  # base.html's <main>: what a step's answer replaces


def forward(body, status: int, url: str | None) -> Response:
    """The answer of a POST that moves the customer on to the next step: that step's page
    itself, one round trip where a 303 and a GET took two.

    `url` is the next step's own address. To htmx (a form with `hx-boost`) the answer says to
    put it in the address bar and history (`HX-Push-Url`), so a reload asks for that page with
    a GET and the back button comes back to the step before, and nothing is posted twice; an
    answer with errors (4xx), or one whose `url` is None, stays at the form's address and
    makes no history entry (`HX-Push-Url: false`). htmx takes the page's <main> alone and puts
    it in place of this one (`HX-Reselect`, `HX-Retarget`): the header, the footer and the
    dialogs stay, with what app.js holds of them (a kiosk's idle warning). Said by the answer,
    not by the form, so that other answers to it keep their own way (an error's notice in
    #avisos, a redirect's whole page).

    Without JavaScript the browser shows the page at the POST's address, and a reload posts
    the step again: only a step that stores a choice may answer this way (the same choice
    stored twice is the same state), never one that makes something (that one redirects)."""
    response = make_response(body, status)
    if is_htmx():
        response.headers["HX-Push-Url"] = url if url and status < 400 else "false"
        response.headers["HX-Retarget"] = MAIN
        response.headers["HX-Reselect"] = MAIN
        response.headers["HX-Reswap"] = "outerHTML"
    return response


def redirect_any(url: str) -> Response:
    """A redirect that htmx follows as a whole-page navigation too (204 + HX-Redirect)."""
    if is_htmx():
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)
