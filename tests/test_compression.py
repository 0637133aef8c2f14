"""Compressed answers (flask-compress) and fingerprinted static files with a year-long cache."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import brotli
import pytest
from flask import Response, stream_with_context

from tests.flows import without_tokens
from webapp.assets import IMMUTABLE, fingerprint

STATIC = Path(__file__).resolve().parent.parent / "static"


def _decoded(response) -> bytes:
    body = response.get_data()
    encoding = response.headers.get("Content-Encoding")
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        return brotli.decompress(body)
    assert encoding is None, encoding
    return body


def _vary(response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",") if v.strip()}


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_pages_come_back_compressed_and_decode_to_the_same_page(client, encoding):
    plain = client.get("/")
    packed = client.get("/", headers={"Accept-Encoding": f"{encoding}, deflate"})
    assert plain.headers.get("Content-Encoding") is None
    assert packed.headers["Content-Encoding"] == encoding
    assert int(packed.headers["Content-Length"]) == len(packed.get_data())
    assert len(packed.get_data()) < len(plain.get_data())
    # The same page but for its CSRF tokens (signed with the time, they differ between requests).
    assert without_tokens(_decoded(packed).decode()) == without_tokens(plain.get_data(as_text=True))
    assert "accept-encoding" in _vary(packed) and "accept-encoding" in _vary(plain)


def test_br_is_preferred_and_identity_is_honoured(client):
    chrome = client.get("/", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert chrome.headers["Content-Encoding"] == "br"
    identity = client.get("/", headers={"Accept-Encoding": "identity"})
    assert identity.headers.get("Content-Encoding") is None


def test_vary_keeps_hx_request_beside_accept_encoding(client, stamped):
    for headers in ({}, {"HX-Request": "true", "HX-Target": "resultados"}):
        r = client.get("/facturas/", headers={"Accept-Encoding": "gzip", **headers})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        assert {"accept-encoding", "hx-request"} <= _vary(r), r.headers["Vary"]
    html = _decoded(r).decode()
    assert "<html" not in html and 'id="resultados"' in html


def test_static_urls_carry_the_files_fingerprint(client):
    html = client.get("/").get_data(as_text=True)
    urls = dict(re.findall(r'(?:href|src)="/static/([^"?]+)\?v=([0-9a-f]+)"', html))
    assert set(urls) >= {"app.css", "htmx-2.0.11.min.js", "app.js", "favicon.svg"}
    with client.application.test_request_context():
        for name, version in urls.items():
            assert len(version) == 10 and version == fingerprint(name)
    css = hashlib.sha256((STATIC / "app.css").read_bytes()).hexdigest()[:10]
    assert urls["app.css"] == css


def test_fingerprinted_static_file_is_cached_for_a_year(client):
    html = client.get("/").get_data(as_text=True)
    url = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', html).group(1)
    r = client.get(url)
    assert r.status_code == 200 and r.headers["Cache-Control"] == IMMUTABLE
    assert "Expires" not in r.headers
    # The security headers are on static files too.
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # A revalidation of the same version is a 304 that keeps the year.
    again = client.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Cache-Control"] == IMMUTABLE
    for other in ("/static/app.css", "/static/app.css?v=0123456789", "/static/app.css?v="):
        r = client.get(other)
        assert r.status_code == 200, other
        assert "immutable" not in r.headers["Cache-Control"]
        assert "no-cache" in r.headers["Cache-Control"]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_static_files_are_compressed_and_decode_to_the_file(client, encoding):
    html = client.get("/").get_data(as_text=True)
    url = re.search(r'src="(/static/htmx-[^"]+)"', html).group(1)
    r = client.get(url, headers={"Accept-Encoding": encoding})
    assert r.headers["Content-Encoding"] == encoding
    assert r.headers["Cache-Control"] == IMMUTABLE
    name = url.split("?")[0].rsplit("/", 1)[-1]
    assert _decoded(r) == (STATIC / name).read_bytes()
    assert len(r.get_data()) < (STATIC / name).stat().st_size / 2


def test_a_range_of_a_static_file_is_not_compressed(client):
    js = "htmx-2.0.11.min.js"
    r = client.get(f"/static/{js}", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-1999"})
    assert r.status_code == 206 and r.headers.get("Content-Encoding") is None
    assert r.get_data() == (STATIC / js).read_bytes()[:2000]


def test_downloads_are_not_compressed_and_byte_exact(app, client, stamped):
    packed = {"Accept-Encoding": "gzip, deflate, br, zstd"}
    for url in (
        f"/facturas/{stamped[0]}.xml",
        f"/facturas/{stamped[0]}.pdf",
        f"/facturar/factura/{stamped[0]}.xml",
        "/facturas/exportar.csv",
        "/facturas/exportar.xlsx",
    ):
        plain, r = client.get(url), client.get(url, headers=packed)
        assert r.status_code == 200 and r.headers.get("Content-Encoding") is None, url
        if url.endswith(".xlsx"):  # a ZIP inside, stamped with the time: compare its start
            assert r.get_data()[:2] == plain.get_data()[:2] == b"PK"
        else:
            assert r.get_data() == plain.get_data(), url
    csv = client.get("/facturas/exportar.csv", headers=packed)
    assert csv.is_streamed and "attachment" in csv.headers["Content-Disposition"]
    zipped = client.get("/facturas/exportar.zip", headers=packed)
    assert zipped.status_code == 200 and zipped.headers.get("Content-Encoding") is None
    assert zipped.get_data()[:2] == b"PK"


def test_streamed_answers_pass_through_even_as_html(make_app):
    app = make_app()

    @app.get("/_stream")
    def _stream():
        def chunks():
            for i in range(200):
                yield f"<p>fila {i}</p>\n"

        return Response(stream_with_context(chunks()), mimetype="text/html")

    r = app.test_client().get("/_stream", headers={"Accept-Encoding": "gzip, br"})
    assert r.headers.get("Content-Encoding") is None
    assert r.get_data(as_text=True).count("<p>fila") == 200


def test_compress_0_leaves_compression_to_the_proxy(make_app, monkeypatch):
    monkeypatch.setenv("COMPRESS", "0")
    client = make_app().test_client()
    r = client.get("/", headers={"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200 and r.headers.get("Content-Encoding") is None
    assert "<html" in r.get_data(as_text=True)
    # Fingerprints and the year-long cache do not depend on it.
    url = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', r.get_data(as_text=True))
    assert client.get(url.group(1)).headers["Cache-Control"] == IMMUTABLE
