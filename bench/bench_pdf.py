"""Invoice PDF times: first render (render cache cleared) and repeats (cache hits), against fpdf2.

    .venv/bin/python bench/bench_pdf.py [--runs 20]

Prints a Markdown table of medians (and 90th percentiles) over `--runs` calls of each case,
in interleaved rounds after a warm-up call. Only the PDF is timed: the Stripe call that
precedes it in the app is not (see the integration tests for that path).

Every case goes through billing_app.pdf.cache as the app does. "First render" clears the
cache before each call: fpdf2 parses the embedded fonts and cuts their subsets for every PDF
(~40 ms a font, see the one-line DejaVu case; a CJK fallback font costs much more).
"Cache hit, memory" is a repeat in the same process; "cache hit, disk" a repeat of a paid
invoice in a process that has not rendered it (memory cleared, file kept).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fpdf import FPDF
from pypdf import PdfReader

from billing_app.pdf import cache, fonts
from billing_app.pdf.invoice import Party
from billing_app.services.invoices import invoice_document
from billing_app.stripe.snapshots import InvoiceLine, InvoiceSummary

START, END = datetime(2026, 11, 26), datetime(2026, 12, 26)
SELLER = Party(
    "iEnterprise Inc.", ("1 Harbour Road", "Springfield 12345", "USA", "Tax ID: US-99-1234567")
)


def invoice(lines: int) -> InvoiceSummary:
    items = tuple(
        InvoiceLine(
            description="Unused time on 10 × Unlimited Version"
            if n % 3 == 1
            else "Unlimited Version",
            quantity=10,
            unit_amount=-267 if n % 3 == 1 else 800,
            amount=-2670 if n % 3 == 1 else 8000,
            period_start=START,
            period_end=END,
            proration=n % 3 == 1,
        )
        for n in range(lines)
    )
    total = sum(item.amount for item in items)
    return InvoiceSummary(
        id="in_bench",
        number=None,
        created=START,
        period_start=START,
        period_end=END,
        status="paid",
        currency="usd",
        subtotal=total,
        tax=0,
        total=total,
        amount_paid=total,
        amount_due=total,
        lines=items,
    )


Case = tuple[
    str, Callable[[], object], Callable[[], bytes]
]  # name, untimed preparation, timed call


def one_line_pdf(name: str, font: Path | None) -> Case:
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

    return name, lambda: None, render


def our_invoice(name: str, lines: int, buyer: str, directory: Path, *, cached: str = "") -> Case:
    """The app's path for a paid invoice, its cache in `directory`; `cached`: "" (a first
    render: nothing cached), "memory" (a repeat) or "disk" (kept on disk, not in memory)."""
    document = invoice_document(
        invoice(lines), "DEMO-0001", SELLER, Party(buyer, ("admin@acme.test",))
    )
    kept = directory / f"{cache.digest(document, 'a4')}.pdf"

    def pdf() -> bytes:
        return cache.invoice_pdf(document, paper="a4", directory=directory, keep_on_disk=True)

    def prepare() -> None:
        if cached:
            pdf()
        else:
            kept.unlink(missing_ok=True)
        if cached != "memory":
            cache.clear_memory()

    return name, prepare, pdf


def measure(cases: list[Case], runs: int) -> list[tuple[str, float, float, int, int]]:
    """Median and p90 ms, pages and size of each case. Rounds interleave the cases, so
    load from other processes (this is a shared machine) falls on all of them alike."""
    warm = [render() for _, _, render in cases]  # imports, first-use caches
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(runs):
        for index, (_, prepare, call) in enumerate(cases):
            prepare()
            start = time.perf_counter()
            call()
            times[index].append(time.perf_counter() - start)
    results = []
    for (name, _, _), content, taken in zip(cases, warm, times):
        taken.sort()
        results.append(
            (
                name,
                statistics.median(taken) * 1000,
                taken[int(0.9 * (runs - 1))] * 1000,
                len(PdfReader(io.BytesIO(content)).pages),
                len(content),
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as directory:
        results = measure(cases(Path(directory)), runs)
    core, embedded = results[0][1], results[1][1]
    print(
        f"Median of {runs} calls each, in interleaved rounds after a warm-up, "
        f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}.\n"
    )
    print(
        "| case | median ms | p90 ms | × core one-liner | × DejaVu one-liner | pages | PDF size |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, median, p90, pages, size in results:
        print(
            f"| {name} | {median:.3f} | {p90:.3f} | {median / core:.2g}× | "
            f"{median / embedded:.2g}× | {pages} | {size / 1024:.0f} KB |"
        )


def cases(directory: Path) -> list[Case]:
    found = [
        one_line_pdf("fpdf2 one-line PDF, core Helvetica", None),
        one_line_pdf("fpdf2 one-line PDF, embedded DejaVu Sans", fonts.REGULAR),
        our_invoice("our invoice, 1 line, first render", 1, "Acme Corp", directory),
        our_invoice(
            'our invoice, 3 lines, "Café Zürich", first render', 3, "Café Zürich", directory
        ),
        our_invoice("our invoice, 60 lines, first render", 60, "Acme Corp", directory),
        our_invoice(
            'our invoice, 3 lines, "Café Zürich", cache hit, memory',
            3,
            "Café Zürich",
            directory,
            cached="memory",
        ),
        our_invoice(
            'our invoice, 3 lines, "Café Zürich", cache hit, disk',
            3,
            "Café Zürich",
            directory,
            cached="disk",
        ),
    ]
    if fonts.installed_fallback_fonts():
        found.append(
            our_invoice(
                'our invoice, 3 lines, "東京商事" (CJK fallback font), first render',
                3,
                "東京商事",
                directory,
            )
        )
    return found


if __name__ == "__main__":
    main()
