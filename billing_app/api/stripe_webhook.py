"""POST /api/stripe/webhook: Stripe's event deliveries."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billing_app.services.gateway import get_billing_service
from billing_app.services.webhooks import handle_delivery

MAX_PAYLOAD_BYTES = 512 * 1024


async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await request.body()
    if len(payload) > MAX_PAYLOAD_BYTES:
        return JSONResponse({"error": "payload too large"}, status_code=413)
    signature = request.headers.get("stripe-signature", "")
    result = await run_in_threadpool(handle_delivery, get_billing_service(), payload, signature)
    return JSONResponse({"outcome": result.outcome}, status_code=result.status)


routes = [Route("/api/stripe/webhook", stripe_webhook, methods=["POST"])]
