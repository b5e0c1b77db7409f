"""Wiring only: the Reflex app, its page, its HTTP middleware and start-up tasks."""

import reflex as rx

from billing_app.api import bench_baseline, invoice_pdf, licenses, stripe_webhook
from billing_app.api.routes import build_api
from billing_app.api.security_headers import with_security_headers
from billing_app.pages import billing_page
from billing_app.services.startup import prepare_stripe
from billing_app.settings import get_settings
from billing_app.states.page import PageState
from billing_app.states.session_guard import SessionGuard

app = rx.App(
    stylesheets=["/billing.css"],
    # Route groups are added here by each area (webhook, license API, invoice PDFs).
    api_transformer=[
        build_api(stripe_webhook.routes, licenses.routes, invoice_pdf.routes,
                  bench_baseline.routes(get_settings().billing_bench_baseline)),
        with_security_headers(get_settings().billing_frame_ancestors),
    ],
)
app.add_middleware(SessionGuard())
app.add_page(billing_page, route="/", title="Billing", on_load=PageState.open_page)
app.register_lifespan_task(prepare_stripe)
