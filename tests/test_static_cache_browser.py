"""A warm visit in a new tab asks the server for the HTML only: static files are cached for a
year under fingerprinted URLs, vary only on Accept-Encoding, and the session cookie is not
rewritten on the visitor's second request (which, with `Vary: Cookie`, missed the cache)."""

from __future__ import annotations

import pytest
from flask import request

pytestmark = pytest.mark.browser


@pytest.fixture
def hits(app):
    """Every path the server is asked for, in order."""
    seen: list[str] = []

    @app.before_request
    def _record():
        seen.append(request.path)

    return seen


def test_warm_visit_in_a_new_tab_sends_only_the_html(app, hits, live_server, page):
    """Each static file is asked for once over both visits (Chromium may ask for the favicon
    after the load event, so the two visits' requests are counted together)."""
    page.goto(live_server + "/")
    page.wait_for_load_state("networkidle")
    second = page.context.new_page()
    second.goto(live_server + "/")
    second.wait_for_load_state("networkidle")
    static = [path for path in hits if path.startswith("/static/")]
    assert static, hits  # the cold visit fetched them
    assert sorted(static) == sorted(set(static)), hits  # ... and the warm one did not
    assert hits.count("/") == 2


def test_static_answers_vary_only_on_encoding_and_set_no_cookie(app, client):
    client.get("/")
    html = client.get("/").get_data(as_text=True)
    for name in ("app.css", "favicon.svg", "app.js"):
        version = html.split(f"/static/{name}?v=", 1)[1].split('"', 1)[0]
        r = client.get(f"/static/{name}?v={version}")
        assert r.status_code == 200
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers.get("Vary") == "Accept-Encoding"
        assert "Set-Cookie" not in r.headers


def test_the_session_cookie_is_set_once_for_a_visitor(client):
    first = client.get("/")
    assert "session=" in first.headers.get("Set-Cookie", "")
    for _ in range(2):
        assert "Set-Cookie" not in client.get("/").headers
