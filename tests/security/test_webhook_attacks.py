"""POST /api/stripe/webhook under attack: huge bodies are refused with 413 without being read whole,
and a delivery whose processing crashes answers 500 and is applied on the next delivery (no
"replay")."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.concurrency import run_in_threadpool
from starlette.testclient import TestClient

from billing_app.api import stripe_webhook
from billing_app.api.routes import build_api
from billing_app.api.security_headers import with_security_headers
from billing_app.db import session_scope
from billing_app.models import StripeEvent
from billing_app.runner import migrate
from billing_app.services.accounts import create_account
from billing_app.services.gateway import get_billing_service
from billing_app.settings import get_settings
from tests.security.tabs import run

CAP = stripe_webhook.MAX_PAYLOAD_BYTES
CHUNK = 64 * 1024
FIFTY_MB = 50 * 1024 * 1024


def webhook_app():
    """The route as the app serves it (the header middleware around the API routes)."""
    static_dir = Path(tempfile.mkdtemp(prefix="no-built-pages-"))
    return with_security_headers(get_settings(), static_dir)(build_api(stripe_webhook.routes))


def post_streamed(headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """POST 50 MB in 64 KB chunks straight to the ASGI app; (status, bytes the app pulled)."""
    pulled = 0
    status = 0

    async def receive():
        nonlocal pulled
        if pulled >= FIFTY_MB:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += CHUNK
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": True}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/stripe/webhook",
        "raw_path": b"/api/stripe/webhook",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    run(webhook_app()(scope, receive, send))
    return status, pulled


def test_a_declared_huge_body_is_refused_before_a_byte_is_read():
    status, pulled = post_streamed([(b"content-length", str(FIFTY_MB).encode())])
    assert (status, pulled) == (413, 0)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"transfer-encoding", b"chunked")],
        [(b"content-length", b"100")],  # a length that lies
    ],
    ids=["chunked", "lying content-length"],
)
def test_a_streamed_huge_body_is_refused_at_the_cap(headers):
    status, pulled = post_streamed(headers)
    assert status == 413
    assert pulled <= CAP + CHUNK


@pytest.mark.e2e
def test_fifty_megabytes_through_the_running_app_are_refused_quickly(base_url):
    sent = 0

    def body():
        nonlocal sent
        while sent < FIFTY_MB:
            sent += CHUNK
            yield b"x" * CHUNK

    started = time.monotonic()
    try:
        response = httpx.post(f"{base_url}/api/stripe/webhook", content=body(), timeout=30)
        status = response.status_code
    except httpx.WriteError:  # the server answered and closed while the client was still sending
        status = 413
    assert status == 413
    assert time.monotonic() - started < 10
    assert sent < FIFTY_MB


def signed(event: dict) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(event).encode()
    timestamp = int(time.time())
    digest = hmac.new(
        get_settings().webhook_secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return payload, {
        "Stripe-Signature": f"t={timestamp},v1={digest}",
        "Content-Type": "application/json",
    }


def customer_with_an_account() -> tuple[str, int]:
    migrate(get_settings().database_url)
    customer = "cus_" + uuid.uuid4().hex[:14]
    with session_scope() as session:
        account = create_account(
            session,
            slug=f"hook-{uuid.uuid4().hex[:10]}",
            name="Hook",
            admin_email="a@hook.test",
            actor="test",
        )
        account.stripe_customer_id = customer
        session.flush()
        return customer, int(account.id or 0)


def subscription_updated(customer: str) -> tuple[str, bytes, dict[str, str]]:
    event_id = "evt_" + uuid.uuid4().hex
    payload, headers = signed(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.subscription.updated",
            "data": {"object": {"id": "sub_x", "object": "subscription", "customer": customer}},
        }
    )
    return event_id, payload, headers


def test_a_crash_answers_500_and_the_next_delivery_is_applied(monkeypatch):
    customer, account_id = customer_with_an_account()
    service = get_billing_service()
    resyncs = []

    def crash(account_id, **_kwargs):
        raise RuntimeError("a bug while applying the event")

    monkeypatch.setattr(service, "resync", crash)
    event_id, payload, headers = subscription_updated(customer)
    client = TestClient(webhook_app())
    first = client.post("/api/stripe/webhook", content=payload, headers=headers)
    assert (first.status_code, first.json()) == (500, {"outcome": "error"})
    with session_scope() as session:
        assert session.get_one(StripeEvent, event_id).outcome == "error"

    monkeypatch.setattr(service, "resync", lambda account_id, **kwargs: resyncs.append(account_id))
    again = client.post("/api/stripe/webhook", content=payload, headers=headers)
    assert (again.status_code, again.json()) == (200, {"outcome": "applied"})
    assert resyncs == [account_id]
    replay = client.post("/api/stripe/webhook", content=payload, headers=headers)
    assert replay.json() == {"outcome": "replay"}


def test_a_flood_of_hanging_deliveries_leaves_the_shared_threads_to_the_rest_of_the_app(
    monkeypatch,
):
    """Deliveries whose processing hangs (Stripe slow to answer) hold a few threads of their own,
    never the worker's whole shared pool, which the license API and the page's files need."""
    customer, _account_id = customer_with_an_account()
    entered, release = threading.Event(), threading.Event()

    def stripe_hangs(_account_id, **_kwargs):
        entered.set()
        release.wait(30)

    monkeypatch.setattr(get_billing_service(), "resync", stripe_hangs)

    async def flood() -> tuple[str, set[int]]:
        transport = httpx.ASGITransport(app=webhook_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            flood = [subscription_updated(customer) for _ in range(60)]
            deliveries = [
                asyncio.create_task(
                    client.post("/api/stripe/webhook", content=payload, headers=headers)
                )
                for _event_id, payload, headers in flood
            ]
            try:
                assert await asyncio.to_thread(entered.wait, 10)
                await asyncio.sleep(0.3)  # the flood takes every thread it can
                with anyio.fail_after(5):
                    probe = await run_in_threadpool(lambda: "served")
            finally:
                release.set()
            responses = await asyncio.gather(*deliveries)
        return probe, {response.status_code for response in responses}

    assert run(flood()) == ("served", {200})
