"""Where the time goes in the paths the benchmarks time: pyinstrument profiles, in this process.

    .venv/bin/python bench/profile_hotpaths.py [api|page|stripe|pdf ...] [--interval 0.0002]

Not run by `make bench` (the name does not start with bench_). Each path runs here, without
the server around it, on a fresh SQLite database in a throw-away data directory:
- api: the license API's work per request: a check read from the database (in its worker thread)
  and from the cache, an activation (for a new seat the lock, the insert, its audit entry and its
  change-feed row); a worker-thread hop alone, for scale;
- page: opening the page from a launch link (redeem the token, read the account, the summary);
- stripe: our own part of cancel/resume (Stripe's answer is replayed, so only our validation,
  idempotency record, commits and audit log are left);
- pdf: rendering a 3-line invoice (what a render-cache miss costs).
Prints the mean time per call, then pyinstrument's call tree.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable

import benchlib


def _timed(name: str, call: Callable[[], object], count: int, interval: float) -> None:
    from pyinstrument import Profiler

    for _ in range(max(5, count // 10)):  # warm-up
        call()
    started = time.perf_counter()
    for _ in range(count):
        call()
    print(
        f"\n## {name}: {(time.perf_counter() - started) / count * 1000:.2f} ms per call ({count} "
        "calls)\n"
    )
    profiler = Profiler(interval=interval)
    profiler.start()
    for _ in range(count):
        call()
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False))


def profile_api(interval: float) -> None:
    import time

    from starlette.concurrency import run_in_threadpool

    from billing_app.api import licenses
    from billing_app.services import seats
    from billing_app.services.license_answers import ANSWERS

    _slug, domain, key = benchlib.make_account("profile-api", licenses=10**7, users=1000)
    counter = iter(range(10**9))
    loop = asyncio.new_event_loop()

    def user() -> str:
        return f"user{next(counter) % 1000:05d}@{domain}"

    # The hop to a worker thread and back, for scale; then what a request does there (the JSON
    # response is built, not sent).
    _timed(
        "worker-thread hop of a no-op (run_in_threadpool)",
        lambda: loop.run_until_complete(run_in_threadpool(int)),
        2000,
        interval,
    )
    _timed(
        "license API GET check, from the database",
        lambda: licenses._read_check(key, user()),
        1000,
        interval,
    )
    # The serving process's feed follower keeps the cache answering; here nothing changes.
    ANSWERS.feed_read(time.monotonic() + 3600)
    _timed(
        "license API GET check, from the cache",
        lambda: seats.cached_check(key, user()),
        5000,
        interval,
    )
    _timed(
        "license API POST activate, already active (with the hop)",
        lambda: loop.run_until_complete(licenses._activate(key, user())),
        1000,
        interval,
    )
    _timed(
        "license API POST activate, new user (with the hop)",
        lambda: loop.run_until_complete(licenses._activate(key, f"new{next(counter)}@{domain}")),
        300,
        interval,
    )
    loop.close()


def profile_page(interval: float) -> None:
    from billing_app.db import session_scope
    from billing_app.models import Account
    from billing_app.services.accounts import redeem_launch_token
    from billing_app.services.summary import build_summary
    from billing_app.settings import get_settings

    slug, _domain, _key = benchlib.make_account("profile-page", licenses=10, users=3)

    def open_page() -> None:
        token = benchlib.launch_link(slug).split("launch=", 1)[1]
        with session_scope() as session:
            account, _claims = redeem_launch_token(session, get_settings(), token)
        with session_scope() as session:
            build_summary(session, session.get(Account, account.id))

    _timed("page open: launch link (signing included), redeem, summary", open_page, 200, interval)


def profile_stripe(interval: float) -> None:
    import bench_stripe
    from billing_app.runner import Stack
    from billing_app.services.gateway import get_billing_service
    from billing_app.settings import get_settings

    settings = get_settings()
    with Stack(settings, env=benchlib.LOOPBACK_ENV) as stack:
        stack.start_localstripe()
        service = get_billing_service()
        account_id, _times = bench_stripe.one_round(service, settings, bench_stripe.StripeTimer())
        subscription_id = service._load(account_id).stripe_subscription_id
        gateway = service.gateway
        answers = {
            flag: gateway.set_cancel_at_period_end(
                subscription_id, flag, idempotency_key=uuid.uuid4().hex
            )
            for flag in (True, False)
        }
    # Stripe's answers replayed: what is left is ours.
    gateway.set_cancel_at_period_end = lambda _id, cancel, idempotency_key: answers[cancel]

    def cancel_and_resume() -> None:
        service.cancel(
            account_id,
            reason="Too expensive",
            additional_features="",
            key=uuid.uuid4().hex,
            actor="p",
        )
        service.resume(account_id, key=uuid.uuid4().hex, actor="p")

    _timed("cancel + resume, our part only", cancel_and_resume, 100, interval)


def profile_pdf(interval: float) -> None:
    import bench_pdf
    from billing_app.pdf.invoice import Party, render_invoice
    from billing_app.services.invoices import invoice_document

    document = invoice_document(
        bench_pdf.invoice(3), "DEMO-0001", bench_pdf.SELLER, Party("Café Zürich", ())
    )
    _timed("invoice PDF, 3 lines, rendered", lambda: render_invoice(document), 20, interval)


PATHS = {"api": profile_api, "page": profile_page, "stripe": profile_stripe, "pdf": profile_pdf}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help=f"some of: {', '.join(PATHS)} (default: all)")
    parser.add_argument(
        "--interval", type=float, default=0.0002, help="pyinstrument's sampling interval, seconds"
    )
    args = parser.parse_args()
    if unknown := set(args.paths) - set(PATHS):
        parser.error(f"unknown path(s): {', '.join(sorted(unknown))}")
    benchlib.configure_environment(
        billing_port=benchlib.port("BENCH_PROFILE_PORT", 3195),
        localstripe_port=benchlib.port("BENCH_PROFILE_LOCALSTRIPE_PORT", 8595),
    )
    from billing_app.runner import migrate
    from billing_app.settings import get_settings

    migrate(get_settings().database_url)
    for name in args.paths or PATHS:
        PATHS[name](args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
