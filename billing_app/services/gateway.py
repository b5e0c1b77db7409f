"""The process-wide Stripe client and billing service, built once from the settings."""

from functools import lru_cache

from billing_app.services.billing_actions import BillingService
from billing_app.settings import get_settings
from billing_app.stripe.client import StripeClient


@lru_cache(maxsize=1)
def get_gateway() -> StripeClient:
    return StripeClient(get_settings())


@lru_cache(maxsize=1)
def get_billing_service() -> BillingService:
    return BillingService(get_gateway(), get_settings())
