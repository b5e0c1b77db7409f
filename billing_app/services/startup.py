"""Work done once when the app process starts."""

from __future__ import annotations

import asyncio
import logging

from billing_app.services.gateway import get_gateway
from billing_app.settings import get_settings
from billing_app.stripe.errors import GatewayError

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/stripe/webhook"


def _prepare() -> None:
    settings = get_settings()
    gateway = get_gateway()
    gateway.ensure_catalogue()
    if settings.test_mode:
        # localstripe forgets webhook endpoints on restart: register ours each time.
        gateway.register_test_webhook(settings.public_url + WEBHOOK_PATH, settings.webhook_secret)


async def prepare_stripe() -> None:
    """Create the catalogue and (test mode) register the webhook; a Stripe outage must not stop the
    app."""
    try:
        await asyncio.to_thread(_prepare)
    except GatewayError as exc:
        log.error(
            "Stripe preparation failed, pages will show Stripe errors until it answers: %s", exc
        )
