"""An issuer's logo and main colour on its customer pages and its PDFs.

The strict CSP forbids inline styles, so the colour comes in a tiny per-issuer stylesheet
(`/marca/<slug>.css`: ":root{--accent:#rrggbb}") linked after app.css, and the logo from
`/marca/<slug>/logo`, both revalidated with an ETag.

The checks (`check_logo`, `accept_logo`, `check_color`) are plain functions returning a
problem code; the settings view words them. A PNG logo is stored re-encoded (webapp.images:
measured from its header, refused above 4 megapixels, reduced, metadata dropped), and served
re-encoded too (`images.safe_png`, cached), so a logo stored before those checks is either
served plain or not at all (404).

    GET /marca/demo.css    → :root{--accent:#1f4e79}
    GET /marca/demo/logo   → the PNG or SVG, nosniff (SVG under a CSP of its own)
"""

from __future__ import annotations

import hashlib
import re

from flask import Blueprint, Response, abort, request, url_for
from lxml import etree
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import undefer

from webapp import images
from webapp.extensions import db
from webapp.models import Issuer

bp = Blueprint("branding", __name__, url_prefix="/marca")

LOGO_MAX_BYTES = 50 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG, SVG = "image/png", "image/svg+xml"
SVG_NS = "http://www.w3.org/2000/svg"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
COLOR = re.compile(r"#[0-9a-fA-F]{6}")
MIN_CONTRAST = 4.5  # WCAG 2 AA, normal text
_FORBIDDEN_TAGS = {"script", "foreignobject", "iframe", "embed", "object", "handler", "listener"}
_URL_IN_CSS = re.compile(r"url\s*\(\s*['\"]?\s*(?!#)|@import|expression\s*\(", re.I)


# --- Checks (no Flask) ----------------------------------------------------------------------


def check_logo(data: bytes) -> tuple[str | None, str | None]:
    """(content type, None) for an acceptable logo, else (None, problem): "empty",
    "too_big", "format" (neither PNG nor SVG), "svg_invalid" (not well-formed or not an
    <svg>), "svg_unsafe" (scripts, event handlers, entities, external references)."""
    if not data:
        return None, "empty"
    if len(data) > LOGO_MAX_BYTES:
        return None, "too_big"
    if data.startswith(PNG_SIGNATURE):
        # The IHDR chunk comes first in every PNG: length 13, type "IHDR".
        if len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
            return None, "format"
        return PNG, None
    head = data.lstrip()[:512].lower()
    if not (head.startswith(b"<?xml") or head.startswith(b"<svg") or head.startswith(b"<!--")):
        return None, "format"
    return (SVG, None) if (problem := _check_svg(data)) is None else (None, problem)


def accept_logo(data: bytes) -> tuple[str | None, bytes | None, str | None]:
    """(content type, bytes to store, None) for an acceptable logo, else (None, None, problem):
    check_logo's problems, and for a PNG "pixels" (more than images.MAX_PIXELS) or "damaged"
    (it does not decode). A PNG is stored re-encoded; an SVG (vector, checked) as sent."""
    content_type, problem = check_logo(data)
    if problem:
        return None, None, problem
    if content_type == SVG:
        return SVG, data, None
    try:
        return PNG, images.reencode_png(data), None
    except images.ImageRefused as refused:
        return None, None, refused.code


def _check_svg(data: bytes) -> str | None:
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        return "svg_unsafe"  # entities and external DTDs: nothing a logo needs
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return "svg_invalid"
    if root.tag != f"{{{SVG_NS}}}svg":
        return "svg_invalid"
    if any(isinstance(n, etree._ProcessingInstruction) for n in root.itersiblings(preceding=True)):
        return "svg_unsafe"  # <?xml-stylesheet?> and the like
    for node in root.iter():
        if isinstance(node, etree._ProcessingInstruction | etree._Entity):
            return "svg_unsafe"
        if not isinstance(node.tag, str):
            continue
        local = etree.QName(node).localname.lower()
        if local in _FORBIDDEN_TAGS:
            return "svg_unsafe"
        if local == "style" and _URL_IN_CSS.search(node.text or ""):
            return "svg_unsafe"
        for name, value in node.attrib.items():
            attr = etree.QName(name).localname.lower()
            if attr.startswith("on"):
                return "svg_unsafe"
            if attr == "href" and not value.strip().startswith("#"):
                return "svg_unsafe"  # external (or javascript:/data:) references
            if attr == "style" and _URL_IN_CSS.search(value):
                return "svg_unsafe"
            if "url(" in value.replace(" ", "").lower() and not re.search(
                r"url\(\s*['\"]?#", value
            ):
                return "svg_unsafe"
    return None


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast_with_white(color: str) -> float:
    """WCAG 2 contrast ratio of white text on `color` ("#rrggbb")."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)
    return 1.05 / (luminance + 0.05)


def check_color(value: str | None) -> tuple[str | None, str | None]:
    """(normalised "#rrggbb" or None for no colour, problem): "format" or "contrast"."""
    value = (value or "").strip()
    if not value:
        return None, None
    if not COLOR.fullmatch(value):
        return None, "format"
    value = value.lower()
    if contrast_with_white(value) < MIN_CONTRAST:
        return value, "contrast"
    return value, None


# --- The customer pages ---------------------------------------------------------------------


@bp.app_template_global()
def brand_head(issuer: Issuer | None) -> Markup:
    """The issuer's stylesheet link, when it has a main colour."""
    if not isinstance(issuer, Issuer) or not issuer.brand_color:
        return Markup("")
    href = url_for("branding.stylesheet", slug=issuer.slug, v=issuer.brand_color[1:])
    return Markup('<link rel="stylesheet" href="%s">') % href


@bp.app_template_global()
def brand_logo(issuer: Issuer | None) -> Markup:
    """The issuer's logo as an <img>, when it has one."""
    if not isinstance(issuer, Issuer) or not issuer.logo_type:
        return Markup("")
    src = url_for("branding.logo", slug=issuer.slug)
    return Markup('<img class="issuer-logo" src="%s" alt="%s" height="48">') % (
        src,
        escape(issuer.legal_name),
    )


def _issuer(slug: str, *options) -> Issuer:
    found = db.session.scalar(select(Issuer).where(Issuer.slug == slug).options(*options))
    if found is None:
        abort(404)
    return found


def _cached(response: Response, data: bytes) -> Response:
    response.set_etag(hashlib.sha256(data).hexdigest()[:32])
    response.cache_control.public = True
    response.cache_control.no_cache = True  # revalidate: a new logo shows at once
    return response.make_conditional(request)


@bp.get("/<slug>.css")
def stylesheet(slug: str):
    """The issuer's colour. At the address the pages link (`?v=` the colour itself) it never
    changes, so the browser keeps it (no request per page on a slow network); any other
    address revalidates."""
    color = _issuer(slug).brand_color
    body = f":root{{--accent:{color}}}\n" if color and COLOR.fullmatch(color) else "\n"
    response = Response(body, mimetype="text/css")
    if color and request.args.get("v") == color[1:]:
        response.cache_control.public = True
        response.cache_control.max_age = 365 * 24 * 3600
        response.cache_control.immutable = True
        return response
    return _cached(response, body.encode())


@bp.get("/<slug>/logo")
def logo(slug: str):
    issuer = _issuer(slug, undefer(Issuer.logo))
    if not issuer.logo or issuer.logo_type not in (PNG, SVG):
        abort(404)
    data = bytes(issuer.logo)
    if issuer.logo_type == PNG:
        data = images.safe_png(data)  # re-encoded: a logo stored before the upload checks too
        if data is None:
            abort(404)
    response = Response(data, mimetype=issuer.logo_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if issuer.logo_type == SVG:
        response.headers["Content-Security-Policy"] = SVG_CSP
    return _cached(response, data)
