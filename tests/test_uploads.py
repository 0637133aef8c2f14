"""Image uploads (issue #13, point 10): a logo is limited in pixels as well as in bytes and is
stored re-encoded (webapp.images); a logo stored before those checks is served and printed
re-encoded, or not at all."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image, PngImagePlugin
from pypdf import PdfReader
from sqlalchemy import select

from tests.flows import load, make_invoice
from webapp import images
from webapp.extensions import db
from webapp.models import Issuer
from webapp.services.stamping import files_with_pdf

NAVY = (31, 78, 121)


def _png(size, mode="RGB", color=NAVY, *, pnginfo=None, exif=None, **params) -> bytes:
    image = Image.new(mode, size, color if mode not in ("1", "P") else 0)
    out = io.BytesIO()
    if pnginfo is not None:
        params["pnginfo"] = pnginfo
    if exif is not None:
        params["exif"] = exif
    image.save(out, format="PNG", optimize=True, **params)
    return out.getvalue()


def _brand(client, logo: bytes, name: str = "logo.png"):
    return client.post(
        "/admin/emisor/marca",
        data={"color": "", "logo": (io.BytesIO(logo), name)},
        content_type="multipart/form-data",
    )


def _logo_error(html: str) -> str:
    found = re.search(r'<p class="field-error" id="logo-error"[^>]*>([^<]*)</p>', html)
    return found.group(1) if found else ""


def _stored(app) -> tuple[bytes | None, str | None]:
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        return (bytes(issuer.logo) if issuer.logo else None), issuer.logo_type


def _store_directly(app, data: bytes) -> None:
    """A logo as an upload stored it before the checks existed: the bytes as sent."""
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        issuer.logo, issuer.logo_type = data, "image/png"
        db.session.commit()


def _pdf_images(pdf: bytes) -> list[tuple[int, int]]:
    """The sizes in pixels of the images drawn in the PDF (the QR code, and the logo)."""
    return [
        (image.image.width, image.image.height)
        for page in PdfReader(io.BytesIO(pdf)).pages
        for image in page.images
    ]


# --- Refused -------------------------------------------------------------------------------


def test_a_tiny_file_of_169_megapixels_is_refused_next_to_the_field(
    app, client, staff, admin_login
):
    """The 20 KB PNG of 13000 × 13000 pixels that made every invoice take 10 s."""
    admin_login(client, staff["admin"])
    bomb = _png((13000, 13000), mode="1")
    assert len(bomb) < 50 * 1024  # within the byte limit: only the pixels refuse it
    response = _brand(client, bomb)
    assert response.status_code == 422
    message = _logo_error(response.get_data(as_text=True))
    assert "13000 × 13000 píxeles" in message and "4 megapíxeles" in message
    assert _stored(app) == (None, None)


def test_pillows_decompression_bomb_guard_is_a_422_not_a_500(
    app, client, staff, admin_login, monkeypatch
):
    """Pillow's own limit (lowered here so a small image trips it) refuses as ours does."""
    admin_login(client, staff["admin"])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow raises above twice that
    response = _brand(client, _png((100, 100)))
    assert response.status_code == 422
    assert "megapíxeles" in _logo_error(response.get_data(as_text=True))
    assert _stored(app) == (None, None)


def test_a_damaged_png_is_refused(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    good = _png((300, 100), color=(200, 10, 10))
    start = good.index(b"IDAT") + 4
    damaged = good[:start] + b"\xff" * 16 + good[start + 16 :]  # the pixel stream broken
    response = _brand(client, damaged)
    assert response.status_code == 422
    assert "dañado" in _logo_error(response.get_data(as_text=True))
    assert _stored(app) == (None, None)


# --- Accepted, re-encoded ------------------------------------------------------------------


def test_a_logo_is_stored_reduced_and_without_metadata_or_trailing_bytes(
    app, client, staff, admin_login
):
    admin_login(client, staff["admin"])
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secreto-del-disenador")
    exif = Image.Exif()
    exif[0x010E] = "descripcion-privada"  # ImageDescription
    sent = _png((1600, 400), pnginfo=info, exif=exif) + b"PAYLOAD-AFTER-IEND"
    assert b"secreto-del-disenador" in sent and b"descripcion-privada" in sent
    response = _brand(client, sent)
    assert response.status_code == 303, _logo_error(response.get_data(as_text=True))

    stored, logo_type = _stored(app)
    assert logo_type == "image/png" and stored != sent
    for secret in (b"secreto-del-disenador", b"descripcion-privada", b"PAYLOAD"):
        assert secret not in stored
    assert stored.endswith(b"IEND\xaeB`\x82")  # nothing after the last chunk
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == images.LOGO_BOX  # 1600 × 400 reduced to 800 × 200
        assert "Comment" not in image.info and "exif" not in image.info
        assert image.convert("RGB").getpixel((400, 100)) == NAVY
    served = client.get("/marca/demo/logo")
    assert served.status_code == 200 and served.data == stored


def test_an_invoice_prints_the_uploaded_logo(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    assert _brand(client, _png((640, 160))).status_code == 303
    public_id = make_invoice(app)
    with app.app_context():
        pdf = files_with_pdf(db.session, load(public_id)).pdf
    assert pdf.startswith(b"%PDF")
    assert (640, 160) in _pdf_images(pdf)  # the logo, beside the QR code


# --- Stored before the checks ----------------------------------------------------------------


def test_a_huge_logo_stored_before_the_checks_is_neither_served_nor_printed(app, client, demo):
    _store_directly(app, _png((13000, 13000), mode="1"))
    assert client.get("/marca/demo/logo").status_code == 404
    public_id = make_invoice(app)
    with app.app_context():  # renders without decoding the 169 megapixels
        pdf = files_with_pdf(db.session, load(public_id)).pdf
    assert pdf.startswith(b"%PDF")
    sizes = _pdf_images(pdf)
    assert len(sizes) == 1 and sizes[0][0] == sizes[0][1]  # the square QR code alone


def test_a_logo_stored_before_the_checks_is_served_re_encoded(app, client, demo):
    _store_directly(app, _png((1000, 250)) + b"PAYLOAD-AFTER-IEND")
    served = client.get("/marca/demo/logo")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert b"PAYLOAD" not in served.data
    with Image.open(io.BytesIO(served.data)) as image:
        assert image.size == images.LOGO_BOX


# --- webapp.images -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "color", "expected_mode", "expected"),
    [
        ("1", None, "L", 0),
        ("L", 90, "L", 90),
        ("LA", (90, 128), "RGBA", (90, 90, 90, 128)),
        ("RGB", NAVY, "RGB", NAVY),
        ("RGBA", (*NAVY, 64), "RGBA", (*NAVY, 64)),
        ("I;16", 65535, "L", 255),  # 16-bit grey scaled to 8 bits, not clipped
        ("I;16", 32896, "L", 128),
    ],
)
def test_every_png_mode_keeps_its_pixels(mode, color, expected_mode, expected):
    image = Image.new(mode, (30, 20))
    if color is not None:
        image.paste(color, (0, 0, 30, 20))
    out = io.BytesIO()
    image.save(out, format="PNG")
    with Image.open(io.BytesIO(images.reencode_png(out.getvalue()))) as again:
        assert again.mode == expected_mode and again.size == (30, 20)
        assert again.getpixel((5, 5)) == expected


def test_a_palette_with_a_transparent_colour_stays_transparent():
    image = Image.new("P", (20, 20), 1)
    image.putpalette([255, 255, 255, *NAVY] + [0] * 762)
    image.paste(0, (0, 0, 10, 20))  # the left half in colour 0, which tRNS makes transparent
    out = io.BytesIO()
    image.save(out, format="PNG", transparency=0)
    with Image.open(io.BytesIO(images.reencode_png(out.getvalue()))) as again:
        assert again.mode == "RGBA"
        assert again.getpixel((2, 2))[3] == 0 and again.getpixel((15, 2)) == (*NAVY, 255)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GIF89a", "format"),
        (images.PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDX" + bytes(17), "format"),
        (images.PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR" + bytes(17), "format"),  # 0 × 0
    ],
)
def test_what_is_not_a_png_is_refused_before_pillow(data, code):
    with pytest.raises(images.ImageRefused) as refused:
        images.reencode_png(data)
    assert refused.value.code == code
    assert images.safe_png(data) is None


def test_the_size_is_read_from_the_header_before_any_decoding():
    header = _png((13000, 13000), mode="1")[:33]  # signature and IHDR alone: no pixels at all
    assert images.png_size(header) == (13000, 13000)
    with pytest.raises(images.ImageRefused) as refused:
        images.reencode_png(header)
    assert refused.value.code == "pixels" and refused.value.size == (13000, 13000)
