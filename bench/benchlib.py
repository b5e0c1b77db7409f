"""Shared helpers of the benchmarks (not a benchmark itself: `make bench` runs bench/report.py,
which runs every bench/bench_*.py and writes docs/performance.md).

Each benchmark starts what it measures on 127.0.0.1 ports of its own, in a throw-away data
directory, stops it again, prints a Markdown table and, with `--json FILE`, writes its rows
for the report. A row is a dict of strings: the table's cells (see COLUMNS).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
# Reflex listens on 0.0.0.0 unless told otherwise; benchmarks stay on the loopback.
LOOPBACK_ENV = {"REFLEX_BACKEND_HOST": "127.0.0.1"}

COLUMNS = ("Benchmark", "Median", "Spread", "Baseline, same run", "Ratio", "Target", "Met?")


# Statistics ----------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (0–100), linear between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    return percentile(samples, 25), statistics.median(samples), percentile(samples, 75)


# Formatting ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


def ms_range(low: float, high: float) -> str:
    return f"{ms(low).removesuffix(' ms')}–{ms(high)}"


def spread_ms(samples: Sequence[float], kind: str = "p25–p75") -> str:
    if kind == "min–max":
        return f"{kind} {ms_range(min(samples), max(samples))}"
    return f"{kind} {ms_range(percentile(samples, 25), percentile(samples, 75))}"


def ratio_text(value: float) -> str:
    return f"{value:.2f}×" if value < 10 else f"{value:,.0f}×"


def met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def row(
    benchmark: str,
    median: str,
    spread: str = "",
    baseline: str = "",
    ratio: str = "",
    target: str = "",
    ok: bool | None = None,
) -> dict[str, str]:
    return dict(
        zip(COLUMNS, (benchmark, median, spread, baseline, ratio, target, met(ok)), strict=True)
    )


def section(title: str) -> dict[str, str]:
    """A heading row inside the table."""
    return {"section": title}


def markdown_table(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for item in rows:
        if "section" in item:
            lines.append(f"| **{item['section']}** |" + " |" * (len(COLUMNS) - 1))
        else:
            lines.append("| " + " | ".join(item[column] for column in COLUMNS) + " |")
    return "\n".join(lines)


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


# Command line and output ---------------------------------------------------------------


def parser(doc: str) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(description=doc.splitlines()[0])
    result.add_argument(
        "--json", type=Path, help="also write the rows to this file (for bench/report.py)"
    )
    return result


def emit(
    title: str,
    rows: list[dict[str, str]],
    json_path: Path | None,
    *,
    started: float,
    load: str,
    notes: Sequence[str] = (),
) -> None:
    """Print the rows as a Markdown table; with --json also write them for the report."""
    seconds = time.monotonic() - started
    print(f"\n{title} (load average at its start: {load}; took {seconds:.0f} s)\n")
    print(markdown_table(rows))
    for note in notes:
        print(f"\n{note}")
    if json_path is not None:
        json_path.write_text(
            json.dumps(
                {
                    "title": title,
                    "rows": rows,
                    "notes": list(notes),
                    "load_at_start": load,
                    "seconds": round(seconds),
                },
                ensure_ascii=False,
                indent=1,
            )
        )


# Processes and settings ----------------------------------------------------------------


def port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def configure_environment(
    *, billing_port: int, localstripe_port: int, database_url: str | None = None
) -> Path:
    """Point the settings at a throw-away data directory (with a fresh SQLite file unless
    `database_url` is given) and our ports, before billing_app is imported."""
    data_dir = Path(tempfile.mkdtemp(prefix="billing-bench-"))
    for name in (
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "BILLING_PUBLIC_URL",
        "BILLING_LAUNCH_SECRET",
        "REFLEX_REDIS_URL",
    ):
        os.environ.pop(name, None)
    os.environ["BILLING_DATA_DIR"] = str(data_dir)
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{data_dir}/billing.db"
    os.environ["BILLING_PORT"] = str(billing_port)
    os.environ["LOCALSTRIPE_PORT"] = str(localstripe_port)
    return data_dir


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new database `billing_bench_<random>` on the server of `server_url` (its URL), dropped
    afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"billing_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def ensure_port_free(port: int) -> None:
    """Refuse a port something already answers on (its answers would be measured instead of
    ours)."""
    from billing_app.runner import ensure_port_free as refuse_port_in_use

    refuse_port_in_use(port, "the benchmark's port")


def stop_process(process: subprocess.Popen, *, group: bool = True) -> None:
    """SIGTERM (to its process group when it has its own), then SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM) if group else process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL) if group else process.kill()
        process.wait()


@contextmanager
def app_stack(*, seed: bool = False, env: dict[str, str] | None = None) -> Iterator:
    """localstripe and the production app (`reflex run --env prod`), as `make run` starts them."""
    from billing_app.runner import Stack, migrate
    from billing_app.services.gateway import get_gateway
    from billing_app.services.seeding import seed_demo
    from billing_app.settings import get_settings

    settings = get_settings()
    migrate(settings.database_url)
    stack = Stack(settings, env={**LOOPBACK_ENV, **(env or {})})
    try:
        stack.start_localstripe()
        if seed:
            seed_demo(get_gateway(), settings)
        stack.start_app()
        yield stack
    except Exception:
        for log in sorted(stack.log_dir.glob("*.log")):
            print(
                f"--- {log.name} (tail) ---\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-30:]),
                file=sys.stderr,
            )
        raise
    finally:
        stack.stop()


def make_account(slug: str, *, licenses: int, users: int) -> tuple[str, str, str]:
    """An Unlimited account with no Stripe objects and `users` activated users
    user00000@<slug>.test…; returns its slug, domain and API key."""
    import sqlalchemy as sa

    from billing_app.db import session_scope
    from billing_app.models import ActivatedUser
    from billing_app.plans import Plan
    from billing_app.services.accounts import create_account, issue_api_key

    domain = f"{slug}.test"
    with session_scope() as session:
        account = create_account(
            session, slug=slug, name=slug.title(), admin_email=f"admin@{domain}", actor="bench"
        )
        account.plan, account.licenses_purchased = Plan.UNLIMITED, licenses
        key = issue_api_key(session, account, actor="bench")
        if users:
            rows = [
                {"account_id": account.id, "email": f"user{i:05d}@{domain}"} for i in range(users)
            ]
            session.execute(sa.insert(ActivatedUser), rows)
    return slug, domain, key


def launch_link(slug: str) -> str:
    """A fresh single-use launch link of the account."""
    from billing_app.db import session_scope
    from billing_app.services.accounts import get_account, launch_url
    from billing_app.settings import get_settings

    with session_scope() as session:
        return launch_url(get_settings(), get_account(session, slug))
