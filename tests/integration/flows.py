"""What the integration tests of the money flows share: accounts, what Stripe.js does in the
browser (confirm a SetupIntent, confirm a payment with 3-D Secure), and a fault-injecting proxy."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from sqlmodel import select

from billing_app.db import session_scope
from billing_app.models import Account, BillingAction
from billing_app.services.accounts import create_account
from billing_app.services.billing_actions import ActionResult, BillingService
from billing_app.settings import TEST_MODE_PUBLISHABLE_KEY, TEST_MODE_SECRET_KEY

ACTOR = "admin@test.example"
VISA = "4242424242424242"
CHARGE_FAILS = "4000000000000341"  # attaches, every charge is declined
SCA = "4000002760003184"  # every payment needs 3-D Secure


def new_account() -> int:
    slug = "t-" + uuid.uuid4().hex[:10]
    with session_scope() as session:
        account_id = create_account(
            session, slug=slug, name=f"Test {slug}", admin_email=f"admin@{slug}.test", actor=ACTOR
        ).id
    assert account_id is not None
    return account_id


def account(account_id: int) -> Account:
    with session_scope() as session:
        stored = session.get(Account, account_id)
        assert stored is not None
        return stored


def actions(account_id: int) -> list[BillingAction]:
    with session_scope() as session:
        return list(
            session.exec(
                select(BillingAction)
                .where(BillingAction.account_id == account_id)
                .order_by(BillingAction.id)
            )
        )  # type: ignore[arg-type]


def confirm_card(emulator: Any, client_secret: str, number: str = VISA) -> dict[str, Any]:
    """What Stripe.js `confirmCardSetup` does: confirm the SetupIntent with the typed card."""
    intent_id = client_secret.split("_secret_")[0]
    response = httpx.post(
        f"{emulator.base}/v1/setup_intents/{intent_id}/confirm",
        json={
            "key": TEST_MODE_PUBLISHABLE_KEY,
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": "12", "exp_year": "2031", "cvc": "123"},
            },
        },
        timeout=10,
    )
    body: dict[str, Any] = response.json()
    if body.get("status") == "requires_action":  # the card's setup itself asks for 3-D Secure
        response = httpx.post(
            f"{emulator.base}/v1/setup_intents/{intent_id}/confirm",
            json={
                "key": TEST_MODE_PUBLISHABLE_KEY,
                "use_stripe_sdk": True,
                "client_secret": client_secret,
            },
            timeout=10,
        )
        body = response.json()
    return body


def confirm_payment(
    emulator: Any, client_secret: str, payment_method: str | None = None, authenticate: bool = True
) -> dict[str, Any]:
    """What Stripe.js `confirmCardPayment` does: confirm, then the bank's challenge if it asks."""
    intent_id = client_secret.split("_secret_")[0]
    data: dict[str, Any] = {"key": TEST_MODE_PUBLISHABLE_KEY, "client_secret": client_secret}
    if payment_method:
        data["payment_method"] = payment_method
    intent = httpx.get(
        f"{emulator.base}/v1/payment_intents/{intent_id}",
        timeout=10,
        headers={"Authorization": f"Bearer {TEST_MODE_SECRET_KEY}"},
    ).json()
    if intent.get("status") in ("requires_confirmation", "requires_payment_method"):
        intent = httpx.post(
            f"{emulator.base}/v1/payment_intents/{intent_id}/confirm", json=data, timeout=10
        ).json()
    if intent.get("status") == "requires_action":
        intent = httpx.post(
            f"{emulator.base}/v1/payment_intents/{intent_id}/_authenticate",
            params={"success": "true" if authenticate else "false"},
            json={"key": TEST_MODE_PUBLISHABLE_KEY, "client_secret": client_secret},
            timeout=10,
        ).json()
    return intent


def card_form(service: BillingService, emulator: Any, account_id: int, number: str = VISA) -> str:
    """A SetupIntent confirmed with `number`, as the card form leaves it."""
    secret = service.start_card_setup(account_id)
    assert confirm_card(emulator, secret, number).get("status") == "succeeded"
    return secret


def through_the_page(
    emulator: Any, run: Callable[..., ActionResult], authenticate: bool = True, **kwargs: Any
) -> ActionResult:
    """Run an action as the page does: when Stripe asks the customer, Stripe.js confirms the
    payment (passing or failing the bank's challenge), then the action is resumed."""
    result = run(**kwargs)
    if result.awaits_customer:
        assert result.client_secret
        confirm_payment(emulator, result.client_secret, result.payment_method_id, authenticate)
        result = run(resume=True, **kwargs)
    return result


def subscribed_account(
    service: BillingService,
    emulator: Any,
    licenses: int = 10,
    interval: str = "month",
    number: str = VISA,
) -> int:
    account_id = new_account()
    secret = card_form(service, emulator, account_id, number)
    through_the_page(
        emulator,
        lambda **kw: service.purchase_unlimited(
            account_id, licenses=licenses, interval=interval, setup_secret=secret, actor=ACTOR, **kw
        ),
    )
    assert account(account_id).plan == "unlimited"
    return account_id


def use_card(service: BillingService, account_id: int, payment_method: str) -> None:
    """Make another card the default at Stripe, for customer and subscription (as Save Card
    does)."""
    stored = account(account_id)
    card = service.gateway.attach_default_card(
        str(stored.stripe_customer_id),
        payment_method,
        idempotency_key=uuid.uuid4().hex,
        subscription_id=stored.stripe_subscription_id,
    )
    assert card.payment_method_id


def card_payment_method(emulator_base: str, number: str) -> str:
    """A card PaymentMethod made at the emulator (what Stripe.js makes of typed card details)."""
    response = httpx.post(
        f"{emulator_base}/v1/payment_methods",
        timeout=10,
        headers={"Authorization": f"Bearer {TEST_MODE_SECRET_KEY}"},
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2031",
            "card[cvc]": "123",
        },
    )
    response.raise_for_status()
    return str(response.json()["id"])


class DroppingProxy:
    """An HTTP proxy to the emulator that forwards every request and, for those `drop` selects,
    hangs up instead of passing the answer on: Stripe did the work, the caller never hears."""

    def __init__(self, upstream: str, drop: Callable[[str, str], bool]) -> None:
        self.dropped: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                answer = httpx.request(
                    self.command, upstream + self.path, content=body, headers=headers, timeout=30
                )
                if drop(self.command, self.path.split("?")[0]):
                    proxy.dropped.append(f"{self.command} {self.path}")
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Idempotent-Replayed"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def charge_a_renewal(emulator_base: str, customer_id: str, amount: int) -> str:
    """An invoice charged off-session to the customer's default card, as a renewal is: with a
    declining or 3-D Secure card it stays open (and the emulator tells the app by webhook)."""
    headers = {"Authorization": f"Bearer {TEST_MODE_SECRET_KEY}"}
    httpx.post(
        f"{emulator_base}/v1/invoiceitems",
        headers=headers,
        timeout=10,
        data={
            "customer": customer_id,
            "amount": str(amount),
            "currency": "usd",
            "description": "Renewal",
        },
    ).raise_for_status()
    invoice = httpx.post(
        f"{emulator_base}/v1/invoices",
        headers=headers,
        timeout=10,
        data={"customer": customer_id, "pending_invoice_items_behavior": "include"},
    ).json()
    httpx.post(f"{emulator_base}/v1/invoices/{invoice['id']}/finalize", headers=headers, timeout=10)
    httpx.post(f"{emulator_base}/v1/invoices/{invoice['id']}/pay", headers=headers, timeout=10)
    return str(invoice["id"])
