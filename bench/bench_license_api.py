"""Benchmark: the connector license API under wrk, against a bare Starlette endpoint in Granian.

    .venv/bin/python bench/bench_license_api.py [--setup sqlite|postgresql] [--runs 3]
        [--seconds 5] [--json FILE]

Two setups, one after the other (each in a process of its own: the settings are read once):
- sqlite: the production app (`reflex run --env prod`, as `make run` starts it) on a fresh SQLite
  file, one Granian worker;
- postgresql: the same app on a fresh database of the PostgreSQL server BENCH_POSTGRES_URL
  (postgresql+psycopg://postgres@127.0.0.1:5432/postgres), Reflex state in BENCH_REDIS_URL
  (redis://127.0.0.1:6379/0), GRANIAN_WORKERS=2. Without an answering server its rows say so.

The baseline is a bare Starlette endpoint returning the check's JSON, served by Granian (the server
the app runs in) with the same worker count, in a process of its own. wrk (Debian's package, one
thread) makes the load at 1, 10 and 50 connections; a small Lua script (bench/wrk_license_api.lua)
adds the Authorization header, varies the email and prints wrk's numbers as JSON. Each run lasts
--seconds; the baseline, the check of activated users (answered from the cache once asked) and the
check of emails never asked before (read from the database) take turns, --runs times: throughput
and p99 are the medians of the runs, their spread the runs' min–max. New activations (POST
activate, a new email each time) are measured at 50 connections, after the checks.

Ports: BENCH_BILLING_PORT (3190), BENCH_LOCALSTRIPE_PORT (8590), BENCH_BARE_PORT (3191).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import benchlib
from benchlib import row, section

CONCURRENCY = (1, 10, 50)
ACTIVATION_CONCURRENCY = 50
USERS = 1000
THROUGHPUT_TARGET = 0.5  # of the bare endpoint
CHECK_P99_TARGET = 0.010  # seconds, at 50 connections
ACTIVATION_P99_TARGET = 0.020  # seconds, at 50 connections, on PostgreSQL
WRK_SCRIPT = Path(__file__).with_name("wrk_license_api.lua")
SETUPS = {"sqlite": ("SQLite", 1), "postgresql": ("PostgreSQL + Redis", 2)}


async def _bare_check(_request: Request) -> JSONResponse:
    return JSONResponse({"licensed": True, "plan": "unlimited"})


bare_app = Starlette(routes=[Route("/api/v1/licenses/check", _bare_check)])


@dataclass
class Runs:
    """wrk's results of one load, run after run."""

    throughput: list[float] = field(default_factory=list)  # req/s
    p50: list[float] = field(default_factory=list)  # seconds
    p99: list[float] = field(default_factory=list)
    non_200: int = 0
    socket_errors: int = 0

    def add(self, result: dict) -> None:
        self.throughput.append(result["requests"] / (result["duration_us"] / 1e6))
        self.p50.append(result["p50_us"] / 1e6)
        self.p99.append(result["p99_us"] / 1e6)
        self.non_200 += result["status_errors"]
        self.socket_errors += result["socket_errors"]

    def text(self) -> str:
        return (
            f"{statistics.median(self.throughput):,.0f} req/s · p50 "
            f"{benchlib.ms(statistics.median(self.p50))} · p99 "
            f"{benchlib.ms(statistics.median(self.p99))}"
        )

    def spread(self) -> str:
        spread = (
            f"runs {min(self.throughput):,.0f}–{max(self.throughput):,.0f} req/s, "
            f"p99 {benchlib.ms_range(min(self.p99), max(self.p99))}"
        )
        if self.non_200 or self.socket_errors:
            spread += f"; {self.non_200} non-2xx, {self.socket_errors} socket errors"
        return spread


def wrk(url: str, *, connections: int, seconds: int, mode: str, key: str, domain: str) -> dict:
    """One wrk run; its Lua script's JSON summary."""
    args = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--script",
        str(WRK_SCRIPT),
        url,
        "--",
        mode,
        key,
        domain,
        str(USERS),
        uuid.uuid4().hex[:8],
    ]
    output = subprocess.run(
        args, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _bare_server(port: int, workers: int) -> subprocess.Popen:
    from billing_app.runner import VENV_BIN, wait_for_http

    benchlib.ensure_port_free(port)
    server = subprocess.Popen(
        [
            str(VENV_BIN / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "bench_license_api:bare_app",
        ],
        cwd=Path(__file__).parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_http(f"http://127.0.0.1:{port}/api/v1/licenses/check", timeout=30, process=server)
    return server


def measure(setup: str, args, app_env: dict[str, str]) -> list[dict[str, str]]:
    """The rows of one setup; the app and the bare server are started and stopped here."""
    from billing_app.settings import get_settings

    database, workers = SETUPS[setup]
    bare_port = benchlib.port("BENCH_BARE_PORT", 3191)
    bare = _bare_server(bare_port, workers)
    rows: list[dict[str, str]] = []
    try:
        with benchlib.app_stack(env={"GRANIAN_WORKERS": str(workers), **app_env}):
            _slug, domain, key = benchlib.make_account("bench-api", licenses=10**7, users=USERS)
            app_url, bare_url = get_settings().public_url, f"http://127.0.0.1:{bare_port}"

            def load(url: str, connections: int, mode: str, seconds: int = args.seconds) -> dict:
                return wrk(
                    url, connections=connections, seconds=seconds, mode=mode, key=key, domain=domain
                )

            for connections in CONCURRENCY:
                load_at_start = benchlib.load_average()
                bare_runs, check_runs, uncached_runs = Runs(), Runs(), Runs()
                for url, mode in [(bare_url, "check"), (app_url, "check"), (app_url, "check-new")]:
                    load(url, connections, mode, seconds=1)  # warm-up: connections, caches
                for _ in range(args.runs):  # taking turns, so that load from elsewhere hits all
                    bare_runs.add(load(bare_url, connections, "check"))
                    check_runs.add(load(app_url, connections, "check"))
                    uncached_runs.add(load(app_url, connections, "check-new"))
                activation_runs = None
                if connections == ACTIVATION_CONCURRENCY:
                    # Last: the app still works off activations queued when wrk stops.
                    activation_runs = Runs()
                    for _ in range(args.runs):
                        activation_runs.add(load(app_url, connections, "activate"))
                        _wait_until_idle(app_url)
                rows += _rows(
                    database,
                    workers,
                    connections,
                    args.runs,
                    load_at_start,
                    bare_runs,
                    check_runs,
                    uncached_runs,
                    activation_runs,
                )
                print(f"  {setup}, {connections} connections: done", file=sys.stderr)
    finally:
        benchlib.stop_process(bare)
    return rows


def _wait_until_idle(app_url: str, timeout: float = 60) -> None:
    """Until the app answers /ping within 50 ms (it has worked off what wrk left queued)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.monotonic()
        httpx.get(f"{app_url}/ping", timeout=timeout)
        if time.monotonic() - started < 0.05:
            return
        time.sleep(0.2)


def _rows(
    database: str,
    workers: int,
    connections: int,
    runs: int,
    load: str,
    bare: Runs,
    check: Runs,
    uncached: Runs,
    activation: Runs | None,
) -> list[dict[str, str]]:
    share = statistics.median(check.throughput) / statistics.median(bare.throughput)
    p99 = statistics.median(check.p99)
    at_most_p99 = connections == max(CONCURRENCY)
    target = f"≥ {THROUGHPUT_TARGET:.0%}" + (
        f", p99 ≤ {CHECK_P99_TARGET * 1000:.0f} ms" if at_most_p99 else ""
    )
    met = share >= THROUGHPUT_TARGET and (p99 <= CHECK_P99_TARGET or not at_most_p99)
    bare_throughput = statistics.median(bare.throughput)
    baseline = f"{bare_throughput:,.0f} req/s"
    rows = [
        section(
            f"License API on {database}, {workers} Granian worker{'s' if workers > 1 else ''}, "
            f"wrk, {connections} connection{'s' if connections > 1 else ''}, median of {runs} runs "
            f"(load average at its start: {load})"
        ),
        row(
            f"Baseline: bare Starlette endpoint, Granian, {workers} "
            f"worker{'s' if workers > 1 else ''}",
            bare.text(),
            bare.spread(),
        ),
        row(
            "`GET check` (activated user, answered from the cache)",
            check.text(),
            check.spread(),
            baseline,
            f"{share:.0%}",
            target,
            met,
        ),
        row(
            "`GET check`, an email never asked before (read from the database)",
            uncached.text(),
            uncached.spread(),
            baseline,
            f"{statistics.median(uncached.throughput) / bare_throughput:.0%}",
        ),
    ]
    if activation is not None:
        p99 = statistics.median(activation.p99)
        on_postgres = database.startswith("PostgreSQL")
        rows.append(
            row(
                "`POST activate` (a new email each: takes a seat)",
                activation.text(),
                activation.spread(),
                baseline,
                f"{statistics.median(activation.throughput) / bare_throughput:.0%}",
                f"p99 ≤ {ACTIVATION_P99_TARGET * 1000:.0f} ms" if on_postgres else "",
                p99 <= ACTIVATION_P99_TARGET if on_postgres else None,
            )
        )
    return rows


def _postgres_answers(server_url: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def run_setup(setup: str, args) -> list[dict[str, str]]:
    ports = {
        "billing_port": benchlib.port("BENCH_BILLING_PORT", 3190),
        "localstripe_port": benchlib.port("BENCH_LOCALSTRIPE_PORT", 8590),
    }
    if setup == "sqlite":
        benchlib.configure_environment(**ports)
        return measure(setup, args, {})
    server_url = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not _postgres_answers(server_url):
        return [
            section("License API on PostgreSQL + Redis, 2 Granian workers"),
            row(
                f"Not measured: no PostgreSQL server answers at {server_url} (set "
                "BENCH_POSTGRES_URL)",
                "—",
            ),
        ]
    with benchlib.fresh_postgres_database(server_url) as database_url:
        benchlib.configure_environment(**ports, database_url=database_url)
        try:
            return measure(setup, args, {"REFLEX_REDIS_URL": redis_url})
        finally:
            from billing_app.db import get_engine

            get_engine().dispose()  # before the database is dropped


def main() -> int:
    args_parser = benchlib.parser(__doc__)
    args_parser.add_argument(
        "--setup", choices=SETUPS, help="one setup only (default: both, each in its own process)"
    )
    args_parser.add_argument(
        "--runs", type=int, default=3, help="runs of each load at each connection count"
    )
    args_parser.add_argument("--seconds", type=int, default=5, help="seconds of one run")
    args = args_parser.parse_args()
    started, load = time.monotonic(), benchlib.load_average()
    if args.setup:
        rows = run_setup(args.setup, args)
    else:
        rows = []
        for setup in SETUPS:
            with tempfile.TemporaryDirectory() as directory:
                output = Path(directory) / "rows.json"
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--setup",
                        setup,
                        "--runs",
                        str(args.runs),
                        "--seconds",
                        str(args.seconds),
                        "--json",
                        str(output),
                    ],
                    check=True,
                )
                rows += json.loads(output.read_text())["rows"]
    benchlib.emit(
        "License API",
        rows,
        args.json,
        started=started,
        load=load,
        notes=[
            (
                "wrk (one thread) runs on the same cores as the servers. A check the worker has "
                "answered before (and nothing changed since) is answered from its cache "
                "(services/license_answers.py) on the event loop; any other check hops to a worker "
                "thread for one SQLAlchemy Core SELECT (the key's account and the user's seat). A "
                "new activation hops to a worker thread, finds the account by its key and then, in "
                "one transaction through the ORM, locks the account row (PostgreSQL), checks the "
                "domain, inserts the seat with one conditional INSERT, counts the seats, writes "
                "the audit entry and the change-feed row. All activations here are of one account: "
                "on PostgreSQL they queue for its row lock; they run after the checks. "
                "`bench/profile_hotpaths.py api` shows where the time goes."
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
