"""Stamping core benchmark: build + sign + validate + sandbox stamp + PDF of a 5-line invoice.

    .venv/bin/python bench/stamping_core.py [--runs 200] [--lines 5]

Prints the median and p95 of each step and of the whole, after a warm-up (schema compiled,
XSLTs compiled, sandbox certificate made, CSD loaded), beside a bare Flask route measured in the
same run (the budget is p95 ≤ 100 ms, PDF included). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from webapp.cfdi import build, render_pdf, samples, sign, validate
from webapp.cfdi.pac.sandbox import SandboxPac

STEPS = ("build", "sign", "validate", "stamp", "pdf")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one(pac: SandboxPac, lines: int, folio: int) -> list[float]:
    draft = samples.draft(lines, folio=folio, fecha=datetime.now(UTC))
    marks = [time.perf_counter()]
    comprobante = build(draft)
    marks.append(time.perf_counter())
    xml = sign(comprobante, samples.signer())
    marks.append(time.perf_counter())
    validate(xml)
    marks.append(time.perf_counter())
    stamped = pac.stamp(xml)
    marks.append(time.perf_counter())
    render_pdf(stamped.xml, branch_name="Sucursal Centro", sandbox=True)
    marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def bare_route(runs: int) -> list[float]:
    app = Flask(__name__)
    app.add_url_rule("/bare", "bare", lambda: "ok")
    client = app.test_client()
    for _ in range(20):
        client.get("/bare")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get("/bare")
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--lines", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        pac = SandboxPac(Path(directory))
        for folio in range(1, 11):  # warm-up
            one(pac, args.lines, folio)
        results = [one(pac, args.lines, 100 + i) for i in range(args.runs)]
    totals = [sum(r) for r in results]
    bare = bare_route(args.runs)
    print(f"{args.runs} invoices of {args.lines} lines (ms)      median      p95")
    for index, step in enumerate(STEPS):
        values = [r[index] for r in results]
        print(f"  {step:<28} {statistics.median(values) * 1000:9.2f} "
              f"{percentile(values, 0.95) * 1000:9.2f}")  # fmt: skip
    print(f"  {'total':<28} {statistics.median(totals) * 1000:9.2f} "
          f"{percentile(totals, 0.95) * 1000:9.2f}")  # fmt: skip
    print(f"  {'bare Flask route':<28} {statistics.median(bare) * 1000:9.2f} "
          f"{percentile(bare, 0.95) * 1000:9.2f}")  # fmt: skip
    pdf_share = statistics.median(r[4] for r in results) / statistics.median(totals)
    print(
        f"  PDF share of the median total: {pdf_share:.0%}; "
        f"total / bare route: {statistics.median(totals) / statistics.median(bare):.0f}×"
    )


if __name__ == "__main__":
    main()
