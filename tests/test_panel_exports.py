"""The panel's streamed exports: ZIP of files, CSV and XLSX of rows."""

from __future__ import annotations

import csv
import io
import os
import tracemalloc
import zipfile
from datetime import UTC, datetime
from decimal import Decimal

import openpyxl

from webapp.panel.exports import csv_stream, xlsx_stream, zip_stream

HEADER = ["Folio", "Receptor", "Fecha", "Total", "Estado"]
ROWS = [
    ["A1", "PEÑA LÓPEZ JOSÉ", datetime(2025, 1, 15, 18, 30, 5, tzinfo=UTC), Decimal("1234.50"), 1],
    ["A2", '=HYPERLINK("http://x")', datetime(2025, 7, 1, 3, 0, tzinfo=UTC), Decimal("-12.00"), 2],
    ["A3", "+52 55", datetime(2025, 7, 1, 12, 0), Decimal("0.10"), None],
    ["A4", "-1", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), Decimal("1000000"), 3],
    ["A5", "@SUM(A1)", datetime(2025, 3, 3, 6, 0, tzinfo=UTC), Decimal("7"), 4],
    ["A6", "\tcelda", datetime(2025, 3, 3, 6, 0, tzinfo=UTC), Decimal("7.5"), 5],
]
# Mexico City wall time (UTC-6 all year since 2022; naive values are already local).
LOCAL = [
    datetime(2025, 1, 15, 12, 30, 5),
    datetime(2025, 6, 30, 21, 0),
    datetime(2025, 7, 1, 12, 0),
    datetime(2025, 12, 31, 17, 59, 59),
    datetime(2025, 3, 3, 0, 0),
    datetime(2025, 3, 3, 0, 0),
]


# --- ZIP --------------------------------------------------------------------------------------


def test_zip_holds_every_entry_byte_for_byte():
    entries = [(f"factura_{i}.xml", os.urandom(i * 37) + b"<cfdi/>" * i) for i in range(60)]
    chunks = list(zip_stream(iter(entries)))
    assert len(chunks) > 1
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [name for name, _ in entries]
        for name, data in entries:
            assert archive.read(name) == data
            assert archive.getinfo(name).compress_type == zipfile.ZIP_DEFLATED


def test_zip_renames_duplicates():
    entries = [("a.xml", b"1"), ("a.xml", b"2"), ("a.xml", b"3"), ("b", b"4"), ("b", b"5")]
    with zipfile.ZipFile(io.BytesIO(b"".join(zip_stream(entries)))) as archive:
        assert archive.namelist() == ["a.xml", "a (2).xml", "a (3).xml", "b", "b (2)"]
        assert [archive.read(n) for n in archive.namelist()] == [b"1", b"2", b"3", b"4", b"5"]


def test_empty_zip_is_valid():
    with zipfile.ZipFile(io.BytesIO(b"".join(zip_stream([])))) as archive:
        assert archive.namelist() == []


def test_zip_streams_lazily_with_bounded_memory():
    size, count = 200 * 1024, 200
    pulled = []

    def entries():
        for i in range(count):
            pulled.append(i)
            yield f"f{i}.pdf", os.urandom(size)

    tracemalloc.start()
    try:
        stream = zip_stream(entries())
        first = next(stream)
        assert first and len(pulled) == 1  # the first bytes come before the second entry
        total, chunks = len(first), 1
        for chunk in stream:
            total += len(chunk)
            chunks += 1
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(pulled) == count and chunks > count
    assert total > size * count  # random bytes do not shrink
    assert peak < 10 * size, f"peak {peak} bytes for {size * count} bytes of entries"


# --- CSV --------------------------------------------------------------------------------------


def test_csv_parses_back_with_accents_plain_amounts_and_local_dates():
    data = b"".join(csv_stream(HEADER, iter(ROWS)))
    assert data.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert parsed[0] == HEADER
    assert [r[0] for r in parsed[1:]] == ["A1", "A2", "A3", "A4", "A5", "A6"]
    assert parsed[1][1] == "PEÑA LÓPEZ JOSÉ"
    assert [r[2] for r in parsed[1:]] == [d.strftime("%Y-%m-%d %H:%M:%S") for d in LOCAL]
    assert [r[3] for r in parsed[1:]] == ["1234.50", "-12.00", "0.10", "1000000", "7", "7.5"]
    assert [r[4] for r in parsed[1:]] == ["1", "2", "", "3", "4", "5"]


def test_csv_guards_against_formula_injection_but_not_numbers():
    parsed = list(csv.reader(io.StringIO(b"".join(csv_stream(HEADER, ROWS)).decode("utf-8-sig"))))
    texts = [r[1] for r in parsed[1:]]
    assert texts == [
        "PEÑA LÓPEZ JOSÉ",
        '\'=HYPERLINK("http://x")',
        "'+52 55",
        "'-1",
        "'@SUM(A1)",
        "'\tcelda",
    ]
    assert parsed[2][3] == "-12.00"  # a negative amount is a number, not text
    data = b"".join(csv_stream(["=x"], [["\rx"]])).decode("utf-8-sig")
    guarded = list(csv.reader(io.StringIO(data)))
    assert guarded == [["'=x"], ["'\rx"]]


def test_csv_streams_in_chunks():
    rows = ([i, f"Cliente número {i}", Decimal(i) / 4] for i in range(20_000))
    chunks = list(csv_stream(["n", "nombre", "total"], rows))
    assert len(chunks) > 5 and max(len(c) for c in chunks) < 128 * 1024
    parsed = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(parsed) == 20_001 and parsed[-1] == ["19999", "Cliente número 19999", "4999.75"]


# --- XLSX -------------------------------------------------------------------------------------


def _open_xlsx(chunks) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(b"".join(chunks)))


def test_xlsx_has_the_values_numbers_and_dates():
    workbook = _open_xlsx(xlsx_stream(HEADER, iter(ROWS)))
    assert workbook.sheetnames == ["Facturas"]
    sheet = workbook["Facturas"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == HEADER
    assert all(sheet.cell(1, c).font.b for c in range(1, len(HEADER) + 1))
    body = values[1:]
    assert [r[0] for r in body] == ["A1", "A2", "A3", "A4", "A5", "A6"]
    # Text stays text, even when it starts like a formula.
    assert [r[1] for r in body] == [r[1] for r in ROWS]
    assert all(sheet.cell(row, 2).data_type == "s" for row in range(2, len(ROWS) + 2))
    assert [r[2] for r in body] == LOCAL
    assert sheet.cell(2, 3).is_date
    assert [r[3] for r in body] == [float(r[3]) for r in ROWS]
    assert all(sheet.cell(row, 4).number_format == "#,##0.00" for row in range(2, 8))
    assert sum(Decimal(str(r[3])) for r in body) == sum(r[3] for r in ROWS)
    assert [r[4] for r in body] == [1, 2, None, 3, 4, 5]
    assert sheet.auto_filter.ref == "A1:E7"
    assert sheet.column_dimensions["B"].width > sheet.column_dimensions["E"].width


def test_xlsx_sheet_name_and_empty_rows():
    sheet = _open_xlsx(xlsx_stream(["Folio"], [], sheet="Enero")).active
    assert sheet.title == "Enero"
    assert list(sheet.iter_rows(values_only=True)) == [("Folio",)]


def test_xlsx_comes_in_chunks_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    rows = ([i, f"Cliente {os.urandom(8).hex()}", Decimal(i) / 4] for i in range(30_000))
    chunks = list(xlsx_stream(["n", "nombre", "total"], rows))
    assert len(chunks) > 1
    sheet = _open_xlsx(chunks).active
    assert sheet.max_row == 30_001 and sheet.cell(30_001, 3).value == 29_999 / 4
    assert list(tmp_path.iterdir()) == []
