"""Wiring only: the Reflex app, its page, its HTTP middleware and start-up tasks."""

import reflex as rx
from reflex.utils.prerequisites import get_web_dir
from reflex_base import constants

from billing_app.api import invoice_pdf, licenses, stripe_webhook
from billing_app.api.routes import build_api, in_front_of_reflex
from billing_app.api.security_headers import with_security_headers
from billing_app.pages import billing_page
from billing_app.services.license_answers import follow_license_changes
from billing_app.services.startup import prepare_stripe
from billing_app.settings import get_settings_or_exit
from billing_app.states.page import PageState
from billing_app.states.session_guard import SessionGuard

_settings = get_settings_or_exit("billing-app")

app = rx.App(
    stylesheets=["/billing.css"],
    # At the top: in the narrow sidebar a toast spans its width, and at the bottom it covered the
    # buttons of the forms and offers the user acts on next. At the top it covers the first tabs
    # for its few seconds, so it can be closed.
    toaster=rx.toast.provider(position="top-center", close_button=True),
    # Route groups are added here by each area (webhook, license API, invoice PDFs).
    api_transformer=[
        in_front_of_reflex(build_api(stripe_webhook.routes, licenses.routes, invoice_pdf.routes)),
        # The built pages' inline scripts are allowed by hash (.web/build/client).
        with_security_headers(_settings, get_web_dir() / constants.Dirs.STATIC),
    ],
)
app.add_middleware(SessionGuard())
app.add_page(billing_page, route="/", title="Billing", on_load=PageState.open_page)
app.register_lifespan_task(prepare_stripe)
app.register_lifespan_task(follow_license_changes)
