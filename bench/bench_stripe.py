"""Benchmark: each money action of BillingService against the sum of its own Stripe calls' times.

    .venv/bin/python bench/bench_stripe.py [--rounds 15] [--json FILE]

Starts the embedded localstripe (127.0.0.1) and drives BillingService in this process, as the
page's event handlers do, on a fresh SQLite database. Every Stripe call goes through
StripeClient._call, which is wrapped here to add up its time (the SDK building the request, the
HTTP round trip to localstripe and the SDK decoding the answer). Overhead ratio = the action's
time / its Stripe calls' time: what our validation, database writes, idempotency records and
audit log add. One round per fresh account: purchase, preview + add licenses, card change,
preview + convert to yearly, cancel, resume; the first round is a warm-up. What Stripe.js does in
the browser (confirming the card, and a payment the bank asks to confirm) is not timed; the action's
resume after it is.

Ports: BENCH_STRIPE_LOCALSTRIPE_PORT (8585).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING

import benchlib
from benchlib import ms, ratio_text, row, section

if TYPE_CHECKING:
    from billing_app.services.billing_actions import ActionResult, ChangePreview

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


def as_the_page(
    timer: StripeTimer, browser: SimpleNamespace, run: Callable[..., ActionResult]
) -> tuple[float, float, int]:
    """One action as the page runs it, timed: when Stripe asks the customer to confirm a payment,
    Stripe.js does so in the browser (not timed) and the action is resumed (timed with it)."""
    from tests.integration.flows import confirm_payment

    answer: list[ActionResult] = []
    total, stripe, calls = timer.measure(lambda: answer.append(run()))
    if answer[0].awaits_customer:
        assert answer[0].client_secret is not None
        confirm_payment(browser, answer[0].client_secret, answer[0].payment_method_id)
        more = timer.measure(lambda: run(resume=True))
        total, stripe, calls = total + more[0], stripe + more[1], calls + more[2]
    return total, stripe, calls


def one_round(
    service, settings, timer: StripeTimer
) -> tuple[int, dict[str, tuple[float, float, int]]]:
    """A fresh account through every action; returns its id and, per action, StripeTimer.measure's
    figures."""
    from billing_app.db import session_scope
    from billing_app.plans import Interval
    from billing_app.services.accounts import create_account
    from tests.integration.flows import confirm_card

    # What the browser reaches directly: Stripe.js confirming cards and payments.
    browser = SimpleNamespace(base=settings.stripe_api_base)
    slug = "bench-" + uuid.uuid4().hex[:10]
    with session_scope() as session:
        account_id = create_account(
            session,
            slug=slug,
            name=f"Bench {slug}",
            admin_email=f"admin@{slug}.test",
            actor="bench",
        ).id

    def form() -> str:  # each opened dialog is one action (its key at Stripe)
        return uuid.uuid4().hex

    results: dict[str, tuple[float, float, int]] = {}
    secret: list[str] = []
    results["start_card_setup (SetupIntent for the card form)"] = timer.measure(
        lambda: secret.append(service.start_card_setup(account_id))
    )
    confirm_card(browser, secret[-1])
    results["purchase_unlimited (5 licenses, monthly)"] = as_the_page(
        timer,
        browser,
        partial(
            service.purchase_unlimited,
            account_id,
            licenses=5,
            interval=Interval.MONTH,
            setup_secret=secret[-1],
            actor="bench",
        ),
    )
    preview: list[ChangePreview] = []
    results["preview_additional_licenses (Purchase Form)"] = timer.measure(
        lambda: preview.append(service.preview_additional_licenses(account_id, 2))
    )
    results["add_licenses (+2, invoiced and paid now)"] = as_the_page(
        timer,
        browser,
        partial(
            service.add_licenses,
            account_id,
            2,
            expected_licenses=5,
            proration_date=preview[-1].proration_date,
            actor="bench",
        ),
    )
    secret.append(service.start_card_setup(account_id))
    confirm_card(browser, secret[-1])
    results["save_card (new default card)"] = as_the_page(
        timer, browser, partial(service.save_card, account_id, secret[-1], actor="bench")
    )
    results["preview_yearly"] = timer.measure(
        lambda: preview.append(service.preview_yearly(account_id))
    )
    results["convert_to_yearly"] = as_the_page(
        timer,
        browser,
        partial(
            service.convert_to_yearly,
            account_id,
            proration_date=preview[-1].proration_date,
            actor="bench",
        ),
    )
    results["cancel (at period end, with feedback)"] = timer.measure(
        lambda: service.cancel(
            account_id,
            reason="Too expensive",
            additional_features="Reports",
            form=form(),
            actor="bench",
        )
    )
    results["resume"] = timer.measure(
        lambda: service.resume(account_id, form=form(), actor="bench")
    )
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
