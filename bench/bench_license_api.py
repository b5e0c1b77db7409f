"""Benchmark: the connector license API under concurrent load, and the User Management tab with 10,000 users.

Starts the production app the way `make run` does (own data directory, own ports) and,
as the baseline, a bare Starlette JSON endpoint on the same server (Granian, one ASGI
worker, as `reflex run --env prod` uses without Redis). Both are loaded in the same run
by the same client, then the tab is timed in headless Chromium. Prints Markdown tables.

    .venv/bin/python bench/bench_license_api.py [--requests 2000] [--concurrency 32]

Ports: BENCH_BILLING_PORT (3190), BENCH_LOCALSTRIPE_PORT (8590), BENCH_BARE_PORT (3191).
BENCH_DATABASE_URL runs it on PostgreSQL instead of a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

USERS_IN_TAB = 10_000
TAB_ROUNDS = 5


async def _bare_check(_request: Request) -> JSONResponse:
    return JSONResponse({"licensed": True, "plan": "unlimited"})


# The baseline: what the same server answers with no app, middleware or database behind it.
bare_app = Starlette(routes=[Route("/check", _bare_check)])


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter

    def row(self, concurrency: int) -> str:
        cuts = statistics.quantiles(self.latencies, n=100)
        errors = sum(count for status, count in self.statuses.items() if status != 200)
        return (
            f"| {self.name} | {self.requests:,} | {concurrency} | {self.requests / self.seconds:,.0f} "
            f"| {cuts[49] * 1000:.1f} | {cuts[98] * 1000:.1f} | {errors} |"
        )


async def _load(name: str, request_for: Callable[[int], tuple], total: int, concurrency: int, headers: dict) -> LoadResult:
    """`total` requests from `concurrency` clients at once; request_for(i) → (method, url, json body or None)."""
    import aiohttp

    latencies: list[float] = []
    statuses: Counter = Counter()
    next_index = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            for index in next_index:
                method, url, body = request_for(index)
                started = time.perf_counter()
                async with session.request(method, url, json=body) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return LoadResult(name, total, seconds, latencies, statuses)


def _configure_environment() -> None:
    """Settings come from the environment: point them at a throw-away place before billing_app is imported."""
    data_dir = tempfile.mkdtemp(prefix="billing-bench-")
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_PUBLIC_URL"):
        os.environ.pop(name, None)
    os.environ["BILLING_DATA_DIR"] = data_dir
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{data_dir}/billing.db")
    os.environ["BILLING_PORT"] = os.environ.get("BENCH_BILLING_PORT", "3190")
    os.environ["LOCALSTRIPE_PORT"] = os.environ.get("BENCH_LOCALSTRIPE_PORT", "8590")


def _make_account(slug: str, *, licenses: int, users: int) -> tuple[str, str, str]:
    """An Unlimited account with `users` activated users; returns its slug, domain and API key."""
    import sqlalchemy as sa

    from billing_app.db import session_scope
    from billing_app.models import PLAN_UNLIMITED, ActivatedUser
    from billing_app.services.accounts import create_account, issue_api_key

    domain = f"{slug}.test"
    with session_scope() as session:
        account = create_account(session, slug=slug, name=slug.title(), admin_email=f"admin@{domain}", actor="bench")
        account.plan, account.licenses_purchased = PLAN_UNLIMITED, licenses
        key = issue_api_key(session, account, actor="bench")
        if users:
            rows = [{"account_id": account.id, "email": f"user{i:05d}@{domain}"} for i in range(users)]
            session.execute(sa.insert(ActivatedUser), rows)
    return slug, domain, key


def _bench_api(base_url: str, bare_url: str, requests: int, concurrency: int) -> list[str]:
    _slug, domain, key = _make_account("bench-api", licenses=10 * requests, users=1000)
    api = f"{base_url}/api/v1/licenses"
    auth = {"Authorization": f"Bearer {key}"}
    scenarios = [
        ("Bare Starlette JSON endpoint (baseline)", {}, lambda i: ("GET", f"{bare_url}/check", None)),
        ("The app's GET /ping (Reflex's stack and our middleware, no database)", {},
         lambda i: ("GET", f"{base_url}/ping", None)),
        ("GET check (activated user)", auth,
         lambda i: ("GET", f"{api}/check?email=user{i % 1000:05d}@{domain}", None)),
        ("POST activate (new user: takes a seat)", auth,
         lambda i: ("POST", f"{api}/activate", {"email": f"new{i}@{domain}"})),
        ("POST activate (already active)", auth,
         lambda i: ("POST", f"{api}/activate", {"email": f"user{i % 1000:05d}@{domain}"})),
    ]
    rows = []
    for name, headers, request_for in scenarios:
        # Warm-up (connections, caches); its new users are not counted.
        asyncio.run(_load("warm-up", lambda i: request_for(requests + i), min(200, requests), concurrency, headers))
        result = asyncio.run(_load(name, request_for, requests, concurrency, headers))
        rows.append(result.row(concurrency))
        print(f"  {name}: done", file=sys.stderr)
    return rows


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:,.0f}"


def _bench_users_tab(settings) -> list[str]:
    from playwright.sync_api import expect, sync_playwright

    from billing_app.db import session_scope
    from billing_app.services import seats
    from billing_app.services.accounts import get_account, launch_url

    slug, _domain, _key = _make_account("bench-tab", licenses=USERS_IN_TAB, users=USERS_IN_TAB)
    with session_scope() as session:
        account = get_account(session, slug)
        url = launch_url(settings, account)
        list_calls = []
        for _ in range(50):
            started = time.perf_counter()
            seats.list_users(session, account.id, page=200)
            list_calls.append(time.perf_counter() - started)

    total = f"{USERS_IN_TAB:,}"
    opened, next_page, searched = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 400, "height": 900}).new_page()
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_be_visible(timeout=30_000)
        rows, users_range = page.locator(".user-row"), page.locator("#users-range")
        for _ in range(TAB_ROUNDS):
            page.get_by_role("tab", name="Plan").click()
            started = time.perf_counter()
            page.get_by_role("tab", name="User Management").click()
            expect(users_range).to_have_text(f"1–25 of {total}", timeout=30_000)
            expect(rows).to_have_count(25)
            opened.append(time.perf_counter() - started)

            started = time.perf_counter()
            page.get_by_role("button", name="Next page").click()
            expect(users_range).to_have_text(f"26–50 of {total}")
            next_page.append(time.perf_counter() - started)

            started = time.perf_counter()
            page.get_by_label("Search users").fill("user09999")
            expect(users_range).to_have_text("1–1 of 1")
            searched.append(time.perf_counter() - started)
        browser.close()
    return [
        f"| Open the tab: first 25 of {total} users shown | {_median_ms(opened)} |",
        f"| Next page | {_median_ms(next_page)} |",
        f"| Search one user among {total} (incl. the input's 300 ms debounce) | {_median_ms(searched)} |",
        f"| `seats.list_users()` alone, page 200 of {total} | {statistics.median(list_calls) * 1000:.1f} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per API scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="clients at once")
    args = parser.parse_args()

    _configure_environment()
    from billing_app.runner import VENV_BIN, Stack, migrate, wait_for_http
    from billing_app.settings import get_settings

    settings = get_settings()
    migrate(settings.database_url)
    bare_port = os.environ.get("BENCH_BARE_PORT", "3191")
    stack = Stack(settings)
    bare = subprocess.Popen(
        [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", bare_port,
         "--workers", "1", "--no-log", "bench_license_api:bare_app"],
        cwd=Path(__file__).parent, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        stack.start_localstripe()
        stack.start_app()
        wait_for_http(f"http://127.0.0.1:{bare_port}/check", timeout=30, process=bare)
        api_rows = _bench_api(settings.public_url, f"http://127.0.0.1:{bare_port}", args.requests, args.concurrency)
        tab_rows = _bench_users_tab(settings)
    finally:
        bare.terminate()
        bare.wait(timeout=20)
        stack.stop()

    database = "PostgreSQL" if settings.database_url.startswith("postgresql") else "SQLite"
    print(f"\nLicense API ({database}, one Granian worker, {os.cpu_count()} CPUs shared with the load generator)\n")
    print("| Scenario | Requests | Concurrency | Throughput (req/s) | p50 (ms) | p99 (ms) | Non-200 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(api_rows))
    print(f"\nUser Management tab, {USERS_IN_TAB:,} users (headless Chromium, median of {TAB_ROUNDS})\n")
    print("| Action | ms |")
    print("|---|---:|")
    print("\n".join(tab_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
