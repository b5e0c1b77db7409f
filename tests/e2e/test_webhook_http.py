"""POST /api/stripe/webhook on the running app: signatures checked, events applied once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest
from sqlmodel import select

from billing_app.db import session_scope
from billing_app.models import StripeEvent
from billing_app.services.accounts import get_account

pytestmark = pytest.mark.e2e


def _post(base_url: str, payload: bytes, signature: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        timeout=10,
    )


def _sign(secret: str, payload: bytes) -> str:
    timestamp = int(time.time())
    return (
        f"t={timestamp},v1="
        + hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    )


def test_webhook_signature_replay_and_headers(base_url: str, app_settings, make_account):
    slug = make_account(licenses=2)
    with session_scope() as session:
        account = get_account(session, slug)
    event_id = "evt_" + uuid.uuid4().hex
    payload = json.dumps(
        {
            "id": event_id,
            "type": "customer.subscription.updated",
            "data": {
                "object": {
                    "id": account.stripe_subscription_id,
                    "object": "subscription",
                    "customer": account.stripe_customer_id,
                }
            },
        }
    ).encode()

    forged = _post(base_url, payload, _sign("whsec_not_ours", payload))
    assert forged.status_code == 400
    assert _post(base_url, payload, "").status_code == 400
    with session_scope() as session:
        assert session.get(StripeEvent, event_id) is None

    first = _post(base_url, payload, _sign(app_settings.webhook_secret, payload))
    assert (first.status_code, first.json()) == (200, {"outcome": "applied"})
    again = _post(base_url, payload, _sign(app_settings.webhook_secret, payload))
    assert (again.status_code, again.json()) == (200, {"outcome": "replay"})
    assert first.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors" in first.headers["content-security-policy"]


def test_localstripe_delivers_real_events_to_the_app(app_settings, make_account):
    """The app registered its webhook with localstripe at start: a change at Stripe arrives by
    itself."""
    slug = make_account(licenses=1)
    with session_scope() as session:
        account_id = get_account(session, slug).id
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with session_scope() as session:
            events = session.exec(
                select(StripeEvent).where(StripeEvent.account_id == account_id)
            ).all()
        if any(event.outcome == "applied" for event in events):
            return
        time.sleep(0.5)
    pytest.fail("no webhook event from localstripe was applied to the new account")
