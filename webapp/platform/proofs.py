"""Proofs of payment (comprobantes, seed 003 PASO 6): a PDF, JPEG or PNG the merchant uploads
on its slip's page.

The type is judged by the file's first bytes (its magic number), never by its name nor by
what the browser says it is; the size is limited; the file is stored under a random name in a
directory outside the web root (the app's instance folder), and served back only through a
view that checks who asks.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

MAX_BYTES = 3 * 1024 * 1024  # below the app-wide MAX_CONTENT_LENGTH (4 MB), so a 422 says why

# (magic bytes, MIME type, extension)
_KINDS = [
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
]
EXTENSIONS = {mime: ext for _, mime, ext in _KINDS}


class ProofError(ValueError):
    """Why a file is not accepted: "empty", "too_big" or "type"."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def sniff(data: bytes) -> str | None:
    """The MIME type of a PDF, PNG or JPEG by its first bytes; None for anything else."""
    for magic, mime, _ext in _KINDS:
        if data.startswith(magic):
            return mime
    return None


def check(data: bytes, max_bytes: int = MAX_BYTES) -> str:
    """The file's MIME type, or ProofError."""
    if not data:
        raise ProofError("empty")
    if len(data) > max_bytes:
        raise ProofError("too_big")
    mime = sniff(data)
    if mime is None:
        raise ProofError("type")
    return mime


def save(directory: str | os.PathLike, data: bytes, mime: str) -> str:
    """Write `data` under a fresh random name in `directory` (made if missing, mode 0700);
    the name to store on the slip."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{secrets.token_hex(16)}.{EXTENSIONS[mime]}"
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return name


def path_of(directory: str | os.PathLike, name: str) -> Path | None:
    """The stored file of `name` (a name this module made: nothing else is opened)."""
    stem, _, ext = (name or "").partition(".")
    if len(stem) != 32 or not all(c in "0123456789abcdef" for c in stem):
        return None
    if ext not in EXTENSIONS.values():
        return None
    path = Path(directory) / name
    return path if path.is_file() else None


def remove(directory: str | os.PathLike, name: str | None) -> None:
    if name and (path := path_of(directory, name)) is not None:
        path.unlink(missing_ok=True)
