"""The production app (embedded localstripe + `reflex run --env prod`) and a headless Chromium."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from billing_app.db import session_scope
from billing_app.models import PLAN_UNLIMITED, ActivatedUser
from billing_app.runner import PROJECT_ROOT, Stack, migrate
from billing_app.services.accounts import create_account, get_account, issue_api_key, launch_url
from billing_app.services.gateway import get_gateway
from billing_app.services.seeding import seed_demo
from billing_app.settings import Settings, get_settings
from tests.e2e.helpers import ISSUED_SECRETS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
    # Lets a page of another origin (the fake connector) frame localhost.
    "--disable-features=LocalNetworkAccessChecks",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def app_stack() -> Stack:
    """Start localstripe, seed the demo through it, start the app in production mode."""
    settings = get_settings()
    migrate(settings.database_url)
    stack = Stack(settings)
    try:
        stack.start_localstripe()
        seed_demo(get_gateway(), settings)
        stack.start_app()
        yield stack
    except Exception:
        for log in sorted(stack.log_dir.glob("*.log")):
            print(f"--- {log.name} (tail) ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        raise
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def app_settings(app_stack: Stack) -> Settings:
    return app_stack.settings


@pytest.fixture(scope="session")
def base_url(app_settings: Settings) -> str:
    return app_settings.public_url


@pytest.fixture
def launch(app_settings: Settings):
    """launch("demo") → a fresh, signed launch link for that account."""

    def make(slug: str = "demo") -> str:
        with session_scope() as session:
            url = launch_url(app_settings, get_account(session, slug))
        ISSUED_SECRETS.append(url.split("launch=", 1)[1])
        return url

    return make


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def make_account(app_settings: Settings):
    """make_account(licenses=10) → slug of a new account, subscribed through Stripe when licenses > 0."""
    from billing_app.models import Account
    from billing_app.services.billing import apply_card, apply_subscription
    from billing_app.services.seeding import subscribe_with_test_card

    def make(licenses: int = 0, *, card: str = "pm_card_visa", yearly: bool = False) -> str:
        slug = "e2e-" + uuid.uuid4().hex[:10]
        with session_scope() as session:
            account_id = create_account(session, slug=slug, name=f"Shop {slug[-4:]}", admin_email=f"boss@{slug}.test",
                                        actor="tests").id
        if licenses:
            card_summary, subscription = subscribe_with_test_card(get_gateway(), account_id, licenses, card=card,
                                                                  yearly=yearly)
            with session_scope() as session:
                account = session.get(Account, account_id)
                apply_subscription(account, subscription)
                apply_card(account, card_summary)
                session.add(account)
        return slug

    return make


@pytest.fixture
def seat_account(app_settings: Settings):
    """seat_account(licenses=10, users=2) → (slug, domain, API key) of a new account on the
    Unlimited Version with no Stripe objects (the license API and the User Management tab need none):
    admin admin@<domain>, users user1@<domain>…, so tests do not disturb the demo accounts."""

    def make(*, licenses: int = 10, users: int = 2) -> tuple[str, str, str]:
        slug = f"seats-{uuid.uuid4().hex[:10]}"
        domain = f"{slug}.test"
        with session_scope() as session:
            account = create_account(session, slug=slug, name=f"Seats {slug[-4:]}", admin_email=f"admin@{domain}", actor="test")
            account.plan, account.licenses_purchased = PLAN_UNLIMITED, licenses
            session.add_all(ActivatedUser(account_id=account.id, email=f"user{i}@{domain}") for i in range(1, users + 1))
            key = issue_api_key(session, account, actor="test")
        ISSUED_SECRETS.append(key)
        return slug, domain, key

    return make
