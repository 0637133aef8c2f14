"""Streamed downloads of the customer's panel: a ZIP of files, a CSV or an XLSX of rows.

Each function is a generator of bytes, fit for a streamed response: rows and entries are
pulled from the given iterables as the output is written (they may be generators reading the
database), so memory holds about one entry (ZIP) or one chunk of rows (CSV, XLSX), never the
whole export. Datetimes are shown as the customer's wall time in Mexico City: aware values
are converted, naive ones are taken as already local.
"""

from __future__ import annotations

import csv
import io
import posixpath
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import xlsxwriter

MEXICO_CITY = ZoneInfo("America/Mexico_City")
CHUNK = 64 * 1024
# A spreadsheet runs a cell starting with these as a formula (CSV/formula injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_COLUMN_WIDTH = 60


def _local(value: datetime) -> datetime:
    """The naive wall time in Mexico City of an aware datetime; a naive one as it is."""
    return value.astimezone(MEXICO_CITY).replace(tzinfo=None) if value.tzinfo else value


# --- ZIP --------------------------------------------------------------------------------------


class _Sink:
    """An unseekable file: zipfile writes data descriptors and we take what it wrote."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _unique(name: str, used: set[str]) -> str:
    """`name`, or `name (2).ext`, `name (3).ext`... when an earlier entry has it."""
    candidate, n = name, 1
    stem, ext = posixpath.splitext(name)
    while candidate in used:
        n += 1
        candidate = f"{stem} ({n}){ext}"
    used.add(candidate)
    return candidate


def zip_stream(entries: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """A deflated ZIP of (name, data) entries, yielded as each entry is written."""
    sink = _Sink()
    used: set[str] = set()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(_unique(name, used), date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.file_size = len(data)  # lets zipfile decide on ZIP64 before writing
            with archive.open(info, "w") as member:
                view = memoryview(data)
                for start in range(0, len(data), CHUNK):
                    member.write(view[start : start + CHUNK])
                    if chunk := sink.drain():
                        yield chunk
            if chunk := sink.drain():
                yield chunk
    if chunk := sink.drain():  # the central directory
        yield chunk


# --- CSV --------------------------------------------------------------------------------------


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return _local(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_stream(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[bytes]:
    """UTF-8 CSV with a BOM (so Excel reads the accents), in chunks of about 64 KiB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([_csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


# --- XLSX -------------------------------------------------------------------------------------


def _display_width(value) -> int:
    if isinstance(value, Decimal):
        return len(f"{value:,.2f}")
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    return len(str(value)) if value is not None else 0


def xlsx_stream(
    header: Sequence[str], rows: Iterable[Sequence], sheet: str = "Facturas"
) -> Iterator[bytes]:
    """An XLSX of one sheet: bold header with autofilter, amounts as numbers (#,##0.00),
    datetimes as Excel dates. Written row by row to a temporary file (xlsxwriter's
    constant_memory mode), then yielded in chunks; the file is gone when the generator ends."""
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as tmp:
        workbook = xlsxwriter.Workbook(tmp, {"constant_memory": True})
        try:
            worksheet = workbook.add_worksheet(sheet)
            bold = workbook.add_format({"bold": True})
            money = workbook.add_format({"num_format": "#,##0.00"})
            moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
            day = workbook.add_format({"num_format": "yyyy-mm-dd"})
            widths = [len(str(h)) + 3 for h in header]  # room for the filter's arrow
            for col, title in enumerate(header):
                worksheet.write_string(0, col, str(title), bold)
            last = 0
            for last, row in enumerate(rows, start=1):
                for col, value in enumerate(row):
                    _write_cell(worksheet, last, col, value, money, moment, day)
                    if col < len(widths):
                        widths[col] = max(widths[col], _display_width(value) + 2)
            for col, width in enumerate(widths):
                worksheet.set_column(col, col, min(width, MAX_COLUMN_WIDTH))
            if header:
                worksheet.autofilter(0, 0, last, len(header) - 1)
                worksheet.freeze_panes(1, 0)
        finally:
            workbook.close()
        tmp.seek(0)
        while chunk := tmp.read(CHUNK):
            yield chunk


def _write_cell(worksheet, row: int, col: int, value, money, moment, day) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        worksheet.write_boolean(row, col, value)
    elif isinstance(value, Decimal):
        worksheet.write_number(row, col, float(value), money)
    elif isinstance(value, int | float):
        worksheet.write_number(row, col, value)
    elif isinstance(value, datetime):
        worksheet.write_datetime(row, col, _local(value), moment)
    elif isinstance(value, date):
        worksheet.write_datetime(row, col, value, day)
    else:  # always a string: never a formula, whatever it starts with
        worksheet.write_string(row, col, str(value))
