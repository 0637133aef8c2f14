"""Image intake: a PNG is measured from its header, refused above a size in pixels, and
re-encoded, so what is stored, served and printed is a plain, small image.

A PNG is a few bytes of header and a compressed stream: 20 KB can hold 13000 × 13000 pixels
(169 megapixels, 676 MB once decoded), which the PDF renderer would decode and scale for every
invoice. So the size is read from the IHDR chunk (the first chunk of every PNG: width and
height, no decoding) and refused above `MAX_PIXELS` before Pillow decodes anything; Pillow's
own guard (`Image.MAX_IMAGE_PIXELS`, DecompressionBombError) is caught too. What passes is
decoded (first frame only), turned upright (EXIF orientation), reduced to fit `LOGO_BOX` and
written anew as a PNG from its pixels alone: text chunks, EXIF, ICC profiles, extra frames and
anything after IEND are not carried over.

Flask-free: the settings view (webapp.admin.settings, through webapp.branding) uses it on
upload, and the logo route and the PDF renderer (webapp.cfdi.pdf) on read through
`safe_png`, for a logo stored before these checks existed.

    reencode_png(data)  → PNG bytes, or ImageRefused("format" | "pixels" | "damaged")
    safe_png(data)      → PNG bytes, or None (cached: one decode per logo and process)
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image, ImageOps

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 4_000_000
"""Largest PNG accepted, in pixels (width × height): 2000 × 2000, or 4000 × 1000."""
LOGO_BOX = (800, 200)
"""A logo is reduced to fit this box (proportions kept; never enlarged): the PDF prints it at
most 160 × 40 pt (5 pixels per point), the pages show it 48 CSS pixels high (4 device pixels
per CSS pixel)."""

# What a decoder raises on a damaged or hostile file: the PNG plugin's SyntaxError ("broken
# PNG file"), OSError ("image file is truncated", "broken data stream"), ValueError
# ("Decompressed data too large" for a text chunk), and the low-level ones it lets through.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


class ImageRefused(ValueError):
    """An image that is not stored: `code` is "format" (not a PNG), "pixels" (more than
    MAX_PIXELS, or Pillow's own limit) or "damaged" (it does not decode); `size` is
    (width, height) when the header said it."""

    def __init__(self, code: str, size: tuple[int, int] | None = None):
        super().__init__(code)
        self.code = code
        self.size = size


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, without decoding; None when `data` does not
    start like a PNG (signature, then a 13-byte IHDR) or a side is zero."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE):
        return None
    if data[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if width and height else None


def reencode_png(
    data: bytes, *, max_pixels: int = MAX_PIXELS, box: tuple[int, int] = LOGO_BOX
) -> bytes:
    """`data` (a PNG) re-encoded from its pixels alone, reduced to fit `box`; ImageRefused
    when it is not a PNG, has more than `max_pixels` pixels or does not decode."""
    size = png_size(data)
    if size is None:
        raise ImageRefused("format")
    if size[0] * size[1] > max_pixels:
        raise ImageRefused("pixels", size)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as opened:
            if opened.size != size:
                raise ImageRefused("damaged", size)
            opened.load()
            image = _plain(ImageOps.exif_transpose(opened))
    except Image.DecompressionBombError as error:  # Pillow's own limit, lower than ours
        raise ImageRefused("pixels", size) from error
    except _DECODE_ERRORS as error:
        raise ImageRefused("damaged", size) from error
    image.thumbnail(box, Image.Resampling.LANCZOS)
    # A new image from the pixels alone: no info (text, ICC, transparency key), no EXIF.
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _plain(image: Image.Image) -> Image.Image:
    """The image in a mode that holds its pixels without side information: RGBA when anything
    is transparent (an alpha channel or a tRNS colour key), else L for grey, RGB for colour."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: scale to 8 bits, do not clip
        image, mode = image.convert("I").point(lambda v: v * (1 / 257)).convert("L"), "L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("L" if mode in ("1", "L") else "RGB")


@functools.lru_cache(maxsize=32)
def safe_png(data: bytes) -> bytes | None:
    """`reencode_png(data)`, or None for an image it refuses: what may be served or printed
    of a stored logo, whenever it was stored."""
    try:
        return reencode_png(data)
    except ImageRefused:
        return None
