"""Benchmark: each money action of BillingService against the sum of its own Stripe calls' times.

    .venv/bin/python bench/bench_stripe.py [--rounds 15] [--json FILE]

Starts the embedded localstripe (127.0.0.1) and drives BillingService in this process, as the
page's event handlers do, on a fresh SQLite database. Every Stripe call goes through
StripeClient._call, which is wrapped here to add up its time (the SDK building the request, the
HTTP round trip to localstripe and the SDK decoding the answer). Overhead ratio = the action's
time / its Stripe calls' time: what our validation, database writes, idempotency records and
audit log add. One round per fresh account: purchase, preview + add licenses, card change,
preview + convert to yearly, cancel, resume; the first round is a warm-up.

Ports: BENCH_STRIPE_LOCALSTRIPE_PORT (8585).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable

import httpx

import benchlib
from benchlib import ms, ratio_text, row, section

TARGET = 1.2


class StripeTimer:
    """Wraps StripeClient._call: how many calls, how long they took."""

    def __init__(self) -> None:
        from billing_app.stripe.client import StripeClient

        self.calls, self.seconds = 0, 0.0
        original = StripeClient._call
        timer = self

        def timed_call(client, fn, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(client, fn, *args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - started
                timer.calls += 1

        StripeClient._call = timed_call

    def measure(self, action: Callable[[], object]) -> tuple[float, float, int]:
        """(the action's seconds, its Stripe calls' seconds, how many calls)."""
        self.calls, self.seconds = 0, 0.0
        started = time.perf_counter()
        action()
        return time.perf_counter() - started, self.seconds, self.calls


def confirm_card(settings, client_secret: str) -> None:
    """What Stripe.js does in the browser: confirm the SetupIntent with a test card (not timed)."""
    from billing_app.settings import TEST_MODE_PUBLISHABLE_KEY

    intent_id = client_secret.split("_secret_")[0]
    response = httpx.post(
        f"{settings.stripe_api_base}/v1/setup_intents/{intent_id}/confirm",
        json={
            "key": TEST_MODE_PUBLISHABLE_KEY,
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": "12",
                    "exp_year": "2031",
                    "cvc": "123",
                },
            },
        },
        timeout=10,
    )
    if response.json().get("status") != "succeeded":
        raise RuntimeError(f"SetupIntent not confirmed: {response.text[:200]}")


def one_round(
    service, settings, timer: StripeTimer
) -> tuple[int, dict[str, tuple[float, float, int]]]:
    """A fresh account through every action; returns its id and, per action, StripeTimer.measure's
    figures."""
    from billing_app.db import session_scope
    from billing_app.services.accounts import create_account

    slug = "bench-" + uuid.uuid4().hex[:10]
    with session_scope() as session:
        account_id = create_account(
            session,
            slug=slug,
            name=f"Bench {slug}",
            admin_email=f"admin@{slug}.test",
            actor="bench",
        ).id

    def key() -> str:
        return uuid.uuid4().hex

    results: dict[str, tuple[float, float, int]] = {}
    secret: list[str] = []
    results["start_card_setup (SetupIntent for the card form)"] = timer.measure(
        lambda: secret.append(service.start_card_setup(account_id, key=key()))
    )
    confirm_card(settings, secret[-1])
    results["purchase_unlimited (5 licenses, monthly)"] = timer.measure(
        lambda: service.purchase_unlimited(
            account_id,
            licenses=5,
            interval="month",
            setup_secret=secret[-1],
            key=key(),
            actor="bench",
        )
    )
    results["preview_additional_licenses (Purchase Form)"] = timer.measure(
        lambda: service.preview_additional_licenses(account_id, 2)
    )
    results["add_licenses (+2, invoiced and paid now)"] = timer.measure(
        lambda: service.add_licenses(account_id, 2, expected_licenses=5, key=key(), actor="bench")
    )
    secret.append(service.start_card_setup(account_id, key=key()))
    confirm_card(settings, secret[-1])
    results["save_card (new default card)"] = timer.measure(
        lambda: service.save_card(account_id, secret[-1], key=key(), actor="bench")
    )
    results["preview_yearly"] = timer.measure(lambda: service.preview_yearly(account_id))
    results["convert_to_yearly"] = timer.measure(
        lambda: service.convert_to_yearly(account_id, key=key(), actor="bench")
    )
    results["cancel (at period end, with feedback)"] = timer.measure(
        lambda: service.cancel(
            account_id,
            reason="Too expensive",
            additional_features="Reports",
            key=key(),
            actor="bench",
        )
    )
    results["resume"] = timer.measure(lambda: service.resume(account_id, key=key(), actor="bench"))
    return account_id, results


def main() -> int:
    args_parser = benchlib.parser(__doc__)
    args_parser.add_argument(
        "--rounds", type=int, default=15, help="rounds (fresh accounts), after one warm-up"
    )
    args = args_parser.parse_args()
    started, load = time.monotonic(), benchlib.load_average()
    benchlib.configure_environment(
        billing_port=benchlib.port("BENCH_STRIPE_PORT", 3185),
        localstripe_port=benchlib.port("BENCH_STRIPE_LOCALSTRIPE_PORT", 8585),
    )
    from billing_app.runner import Stack, migrate
    from billing_app.services.gateway import get_billing_service
    from billing_app.settings import get_settings

    settings = get_settings()
    migrate(settings.database_url)
    timer = StripeTimer()
    samples: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    with Stack(settings) as stack:
        stack.start_localstripe()
        service = get_billing_service()
        service.gateway.ensure_catalogue()
        one_round(service, settings, timer)  # warm-up
        for _ in range(args.rounds):
            for name, result in one_round(service, settings, timer)[1].items():
                samples[name].append(result)

    rows = [
        section(
            f"Stripe actions (BillingService) vs the sum of their Stripe calls, localstripe, "
            f"median of {args.rounds}"
        )
    ]
    for name, results in samples.items():
        totals = [total for total, _, _ in results]
        stripe = [seconds for _, seconds, _ in results]
        ratios = [total / seconds for total, seconds, _ in results]
        calls = statistics.median(count for _, _, count in results)
        ratio = statistics.median(ratios)
        ours = statistics.median(total - seconds for total, seconds, _ in results)
        rows.append(
            row(
                f"`{name}`",
                f"{ms(statistics.median(totals))} (ours {ms(ours)})",
                "ratio p25–p75 "
                f"{benchlib.percentile(ratios, 25):.2f}–{benchlib.percentile(ratios, 75):.2f}×",
                f"{calls:.0f} Stripe call{'s' if calls != 1 else ''} "
                f"{ms(statistics.median(stripe))}",
                ratio_text(ratio),
                f"≤ {TARGET}×",
                ratio <= TARGET,
            )
        )
    benchlib.emit(
        "Stripe actions",
        rows,
        args.json,
        started=started,
        load=load,
        notes=[
            (
                "A Stripe call's time is StripeClient._call: the SDK and the HTTP round trip to "
                "the local emulator, a few ms "
                'here. "ours" is the rest (validation, idempotency record, database commits, audit '
                "log): a fixed cost "
                "per action, so against real Stripe, whose calls go over the internet, the ratio "
                "would be lower."
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
