"""Invoice PDF render time, against fpdf2 rendering a one-line PDF in the same run.

    .venv/bin/python bench/bench_pdf.py [--runs 40]

Prints a Markdown table of medians (and 90th percentiles) over `--runs` renders
of each case, in interleaved rounds after a warm-up render. Only rendering is timed: the Stripe call
that precedes it in the app is not (see the integration tests for that path).

fpdf2 parses and subsets the embedded fonts for every PDF (see the "embedded DejaVu Sans"
one-liner), ours as well.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fpdf import FPDF  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from billing_app.pdf import fonts  # noqa: E402
from billing_app.pdf.invoice import Party, render_invoice  # noqa: E402
from billing_app.services.invoices import invoice_document  # noqa: E402
from billing_app.stripe_gateway import InvoiceLine, InvoiceSummary  # noqa: E402

START, END = datetime(2026, 11, 26), datetime(2026, 12, 26)
SELLER = Party("iEnterprise Inc.", ("1 Harbour Road", "Springfield 12345", "USA", "Tax ID: US-99-1234567"))


def invoice(lines: int) -> InvoiceSummary:
    items = tuple(
        InvoiceLine(
            description="Unused time on 10 × Unlimited Version" if n % 3 == 1 else "Unlimited Version",
            quantity=10, unit_amount=-267 if n % 3 == 1 else 800, amount=-2670 if n % 3 == 1 else 8000,
            period_start=START, period_end=END, proration=n % 3 == 1,
        )
        for n in range(lines)
    )
    total = sum(item.amount for item in items)
    return InvoiceSummary(id="in_bench", number=None, created=START, period_start=START, period_end=END,
                          status="paid", currency="usd", subtotal=total, tax=0, total=total, amount_paid=total,
                          amount_due=total, lines=items)


def one_line_pdf(font: Path | None) -> Callable[[], bytes]:
    def render() -> bytes:
        pdf = FPDF()
        pdf.add_page()
        if font is None:
            pdf.set_font("helvetica", size=12)
        else:
            pdf.add_font("dejavu", "", font)
            pdf.set_font("dejavu", size=12)
        pdf.cell(text="Invoice DEMO-0001: $80.00")
        return bytes(pdf.output())
    return render


def our_invoice(lines: int, buyer: str) -> Callable[[], bytes]:
    document = invoice_document(invoice(lines), "DEMO-0001", SELLER, Party(buyer, ("admin@acme.test",)))
    return lambda: render_invoice(document)


def measure(cases: list[tuple[str, Callable[[], bytes]]], runs: int) -> list[tuple[str, float, float, int, int]]:
    """Median and p90 ms, pages and size of each case. Rounds interleave the cases, so
    load from other processes (this is a shared machine) falls on all of them alike."""
    warm = [render() for _, render in cases]  # imports, first-use caches
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(runs):
        for index, (_, render) in enumerate(cases):
            start = time.perf_counter()
            render()
            times[index].append(time.perf_counter() - start)
    results = []
    for (name, _), content, taken in zip(cases, warm, times):
        taken.sort()
        results.append((name, statistics.median(taken) * 1000, taken[int(0.9 * (runs - 1))] * 1000,
                        len(PdfReader(io.BytesIO(content)).pages), len(content)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    cases: list[tuple[str, Callable[[], bytes]]] = [
        ("fpdf2 one-line PDF, core Helvetica", one_line_pdf(None)),
        ("fpdf2 one-line PDF, embedded DejaVu Sans", one_line_pdf(fonts.REGULAR)),
        ("our invoice, 1 line", our_invoice(1, "Acme Corp")),
        ("our invoice, 3 lines, \"Café Zürich\"", our_invoice(3, "Café Zürich")),
        ("our invoice, 60 lines", our_invoice(60, "Acme Corp")),
    ]
    if fonts.installed_fallback_fonts():
        cases.append(("our invoice, 3 lines, \"東京商事\" (CJK fallback font)", our_invoice(3, "東京商事")))
    results = measure(cases, runs)
    core, embedded = results[0][1], results[1][1]
    print(f"Median of {runs} renders each, in interleaved rounds after a warm-up, "
          f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}.\n")
    print("| case | median ms | p90 ms | × core one-liner | × DejaVu one-liner | pages | PDF size |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, median, p90, pages, size in results:
        print(f"| {name} | {median:.1f} | {p90:.1f} | {median / core:.0f}× | {median / embedded:.2g}× "
              f"| {pages} | {size / 1024:.0f} KB |")


if __name__ == "__main__":
    main()
