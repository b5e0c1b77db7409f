"""`make bench`: run every bench/bench_*.py, then rewrite the "## Latest run" section of
docs/performance.md.

    .venv/bin/python bench/report.py [--print]

Each benchmark runs in its own process, with a time limit, and hands its rows back as JSON
(`--json FILE`, see benchlib.py). bench/bench_pdf.py (invoice PDFs) prints its own Markdown
table: it is run a few times and its medians are read from that table. A bench_*.py this file
does not know is run as it is and its output is quoted under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import benchlib

BENCH = Path(__file__).resolve().parent
REPORT = benchlib.ROOT / "docs" / "performance.md"
SECTION = "## Latest run"
# Browser pages and actions, Stripe actions, license API, invoice PDF: the order of the table.
ORDER = ("bench_page.py", "bench_stripe.py", "bench_license_api.py", "bench_pdf.py")
TIME_LIMIT = 420  # seconds for one benchmark process (the whole run stays well under 15 min)
PDF_RUNS, PDF_RENDERS = 3, 20  # a run of bench_pdf.py times eight cases, the CJK render ~0.6 s each
# Targets, by a part of the case's name: a 3-line invoice's first render, and any repeat.
PDF_TARGETS_MS = {'3 lines, "Café Zürich", first render': 100.0, "cache hit": 2.0}


def _run(args: list[str]) -> str:
    started = time.monotonic()
    print(
        f"== {' '.join(Path(a).name if a.endswith('.py') else a for a in args[1:])}",
        file=sys.stderr,
        flush=True,
    )
    # The exit code is checked below, with a message naming the benchmark.
    result = subprocess.run(
        args, cwd=benchlib.ROOT, stdout=subprocess.PIPE, text=True, timeout=TIME_LIMIT, check=False
    )
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(f"{args[1]} failed with exit code {result.returncode}")
    print(f"   {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return result.stdout


def run_benchlib_script(script: Path) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "rows.json"
        _run([sys.executable, str(script), "--json", str(output)])
        return json.loads(output.read_text())


# Invoice PDFs: bench/bench_pdf.py (from the invoice-PDF work) ------------------------------------

_PDF_ROW = re.compile(
    r"^\|\s*(?P<case>[^|]+?)\s*\|\s*(?P<median>[\d.,]+)\s*\|\s*(?P<p90>[\d.,]+)\s*\|"
)


def run_pdf(script: Path) -> dict:
    """bench_pdf.py prints `| case | median ms | p90 ms | …` per case, first the fpdf2 baseline:
    run it PDF_RUNS times and report, per case, the median of its medians and their min–max."""
    started, load = time.monotonic(), benchlib.load_average()
    medians: dict[str, list[float]] = {}
    for _ in range(PDF_RUNS):
        output = _run([sys.executable, str(script), "--runs", str(PDF_RENDERS)])
        for line in output.splitlines():
            match = _PDF_ROW.match(line)
            if match and not match["case"].startswith("case"):
                medians.setdefault(match["case"], []).append(
                    float(match["median"].replace(",", ""))
                )
    if not medians:
        return {
            "title": "Invoice PDF",
            "rows": [],
            "raw": output,
            "load_at_start": load,
            "seconds": round(time.monotonic() - started),
            "notes": [
                "bench_pdf.py printed no table this report can read; its output is quoted below."
            ],
        }
    cases = list(medians)
    baseline = statistics.median(medians[cases[0]])
    # The one-line PDF with the same embedded font, when there is one: what our layout adds to
    # fpdf2's font work.
    font_case = next(
        (
            case
            for case in cases[1:]
            if not case.lower().startswith("our ") and "dejavu" in case.lower()
        ),
        None,
    )
    font_baseline = statistics.median(medians[font_case]) if font_case else None
    rows = [
        benchlib.section(
            f"Invoice PDF (fpdf2, render cache), median of {PDF_RUNS} runs × {PDF_RENDERS} calls"
        )
    ]
    for case in cases:
        value = statistics.median(medians[case])
        spread = f"runs min–max {_ms(min(medians[case]))}–{_ms(max(medians[case]))} ms"
        if case == cases[0]:
            rows.append(benchlib.row(f"Baseline: {case}", f"{_ms(value)} ms", spread))
            continue
        ours = case.lower().startswith("our ")
        baselines, ratios = f"{baseline:.1f} ms", benchlib.ratio_text(value / baseline)
        if ours and font_baseline:
            baselines += f"; same-font one-liner {font_baseline:.1f} ms"
            ratios += f"; {benchlib.ratio_text(value / font_baseline)}"
        target = next((ms for kind, ms in PDF_TARGETS_MS.items() if ours and kind in case), None)
        rows.append(
            benchlib.row(
                case,
                f"{_ms(value)} ms",
                spread,
                baselines,
                ratios,
                f"≤ {target:g} ms" if target else "",
                value <= target if target else None,
            )
        )
    notes = [
        (
            "Every PDF goes through a render cache (billing_app/pdf/cache.py, keyed by a digest of "
            "all it shows): a repeat is served from memory, a paid or void invoice also from disk "
            "in any process. A first render is fpdf2's own work: it parses both DejaVu fonts and "
            "cuts their subsets for every PDF (see the one-line DejaVu case), then lays out the "
            "lines with its table() (each cell measured, then drawn); `bench/profile_hotpaths.py "
            "pdf` shows the split."
        )
    ]
    return {
        "title": "Invoice PDF",
        "rows": rows,
        "notes": notes,
        "load_at_start": load,
        "seconds": round(time.monotonic() - started),
    }


def _ms(value: float) -> str:
    return (
        f"{value:.1f}" if value >= 1 else f"{value:.3f}"
    )  # cache hits take well under a millisecond


def pdf_missing() -> dict:
    # HOOK: bench/bench_pdf.py comes with the invoice-PDF work; once it is in this tree, run_pdf()
    # runs it.
    return {
        "title": "Invoice PDF",
        "load_at_start": "",
        "seconds": 0,
        "notes": [],
        "rows": [
            benchlib.section("Invoice PDF render"),
            benchlib.row(
                "Not measured: bench/bench_pdf.py is not in this tree yet (`make bench` runs it "
                "when it is)",
                "—",
                "",
                "",
                "",
                "≤ 100 ms",
            ),
        ],
    }


# The report's section ----------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=benchlib.ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def performance_section(
    results: list[dict], *, commit: str, load_start: str, load_end: str, minutes: float
) -> str:
    rows: list[dict[str, str]] = []
    notes: list[str] = []
    raw: list[str] = []
    for result in results:
        rows += result["rows"]
        loads = (
            f" (load average at its start: {result['load_at_start']})"
            if result.get("load_at_start")
            else ""
        )
        notes += [f"- {result['title']}{loads}: {note}" for note in result["notes"]]
        if result.get("raw"):
            raw.append(f"```\n{result['raw'].strip()}\n```")
    not_met, heading = [], ""
    for item in rows:
        heading = item.get("section", heading)
        if item.get("Met?") == "**no**":
            not_met.append(f"{item['Benchmark']} ({heading.split(' (load average')[0]})")
    lines = [
        SECTION,
        "",
        (
            f"Written by `make bench` {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on commit {commit}, "
            f"{minutes:.0f} min in all. Machine: {benchlib.cpu_model()}, **{os.cpu_count()} "
            f"cores**, shared with other jobs; load average (1, 5, 15 min) **{load_start}** at the "
            f"start and **{load_end}** at the end. The browser, the load generator and the servers "
            "run on the same cores: absolute numbers move from run to run with the load, ratios "
            "to a baseline measured in the same run (taking turns with it) much less."
        ),
        "",
        benchlib.markdown_table(rows),
        "",
        (
            "Spread: p25–p75 of the samples unless said otherwise. Page and action times are taken "
            "inside the page (navigation start or the click/input event → the DOM showing the "
            "result), not by the test driver."
        ),
        *notes,
        *raw,
        "",
        "Not met in this run: " + ("; ".join(not_met) if not_met else "none") + ".",
        "",
    ]
    return "\n".join(lines)


def replace_section(report: str, section: str) -> str:
    """Swap the "## Latest run" section (up to the next "## " heading) for `section`; append it if
    absent."""
    match = re.search(rf"^{SECTION}\n.*?(?=^## |\Z)", report, flags=re.DOTALL | re.MULTILINE)
    if match is None:
        return report.rstrip("\n") + "\n\n" + section
    return (
        report[: match.start()]
        + section
        + ("\n" if match.end() < len(report) else "")
        + report[match.end() :]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--print",
        action="store_true",
        help="print the section instead of writing docs/performance.md",
    )
    args = parser.parse_args()
    started, load_start = time.monotonic(), benchlib.load_average()
    # Read before anything runs: `reflex run` rewrites reflex.lock/package.json and .gitignore.
    dirty = (
        " (with uncommitted changes)"
        if _git("status", "--porcelain", "--untracked-files=no")
        else ""
    )
    commit = f"`{_git('rev-parse', '--short', 'HEAD')}`{dirty}"
    scripts = sorted(
        BENCH.glob("bench_*.py"),
        key=lambda p: (ORDER.index(p.name) if p.name in ORDER else 99, p.name),
    )
    results = []
    for script in scripts:
        if script.name == "bench_pdf.py":
            results.append(run_pdf(script))
        elif script.name in ORDER:
            try:
                results.append(run_benchlib_script(script))
            except (
                SystemExit
            ) as failure:  # one broken benchmark leaves the others' numbers standing
                results.append(
                    {
                        "title": script.name,
                        "notes": [],
                        "rows": [
                            benchlib.section(script.name),
                            benchlib.row(f"Not measured: {failure}", "—"),
                        ],
                    }
                )
        else:
            results.append(
                {
                    "title": script.name,
                    "rows": [],
                    "notes": [],
                    "raw": _run([sys.executable, str(script)]),
                }
            )
    if not (BENCH / "bench_pdf.py").exists():
        results.append(pdf_missing())
    section = performance_section(
        results,
        commit=commit,
        load_start=load_start,
        load_end=benchlib.load_average(),
        minutes=(time.monotonic() - started) / 60,
    )
    if args.print:
        print(section)
    else:
        REPORT.write_text(
            replace_section(REPORT.read_text(encoding="utf-8"), section), encoding="utf-8"
        )
        print(
            f'\n{REPORT.relative_to(benchlib.ROOT)}: "{SECTION}" rewritten '
            f"({(time.monotonic() - started) / 60:.1f} min)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
