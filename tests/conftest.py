"""Shared test set-up: every test run gets its own data directory and database."""

import os
import tempfile

# Settings are read from the environment; point them at a throw-away place before
# any billing_app module is imported, and make sure a developer's real keys or .env
# never reach the tests.
_RUN_DIR = tempfile.mkdtemp(prefix="billing-tests-")
for _name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_LAUNCH_SECRET"):
    os.environ.pop(_name, None)
os.environ["BILLING_DATA_DIR"] = _RUN_DIR
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_RUN_DIR}/billing.db")
# Ports of their own, so tests run beside a `make run` on the default ports.
os.environ["BILLING_PORT"] = os.environ.get("TEST_BILLING_PORT", "3107")
os.environ["LOCALSTRIPE_PORT"] = os.environ.get("TEST_LOCALSTRIPE_PORT", "8527")
os.environ.pop("BILLING_PUBLIC_URL", None)
# The end-to-end tests frame the page from this (fake) connector origin.
os.environ["BILLING_FRAME_ANCESTORS"] = "'self' http://connector.test"
