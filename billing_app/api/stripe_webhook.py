"""POST /api/stripe/webhook: Stripe's event deliveries."""

from __future__ import annotations

from anyio import CapacityLimiter, to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billing_app.services.gateway import get_billing_service
from billing_app.services.webhooks import handle_delivery

MAX_PAYLOAD_BYTES = 512 * 1024
# A burst of deliveries waits here for one of these threads, so it cannot take all of the worker's
# shared thread pool (40), which the license API and the page's static files need too.
DELIVERY_THREADS = CapacityLimiter(8)


async def _capped_body(request: Request) -> bytes | None:
    """The body, read as it streams in; None as soon as it passes the cap (never held whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PAYLOAD_BYTES:
            return None
    return bytes(body)


async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await _capped_body(request)
    if payload is None:
        return JSONResponse({"error": "payload too large"}, status_code=413)
    signature = request.headers.get("stripe-signature", "")
    result = await to_thread.run_sync(
        handle_delivery, get_billing_service(), payload, signature, limiter=DELIVERY_THREADS
    )
    return JSONResponse({"outcome": result.outcome}, status_code=result.status)


routes = [Route("/api/stripe/webhook", stripe_webhook, methods=["POST"])]
