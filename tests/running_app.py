"""The running app (embedded localstripe + `reflex run --env prod`) and a headless Chromium, one of
each per test run, for every suite that needs them (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from billing_app.db import session_scope
from billing_app.runner import PROJECT_ROOT, Stack, migrate
from billing_app.services.accounts import get_account, launch_url
from billing_app.services.gateway import get_gateway
from billing_app.services.seeding import seed_demo
from billing_app.settings import Settings, get_settings
from tests.e2e.helpers import ISSUED_SECRETS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    # Lets a page of another origin (the fake connector) frame localhost.
    "--disable-features=LocalNetworkAccessChecks",
]


ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def print_log_tails(stack: Stack, lines: int = 40) -> None:
    for log in sorted(stack.log_dir.glob("*.log")):
        print(
            f"--- {log.name} (tail) ---\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keeps each phase's report on the test, for the `page` fixture's failure evidence."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


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
        print_log_tails(stack)
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
    """launch("demo") → a fresh, signed launch link for that account (`locale="de"`: in German)."""

    def make(slug: str = "demo", locale: str | None = None) -> str:
        with session_scope() as session:
            url = launch_url(app_settings, get_account(session, slug), locale=locale)
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
def page(browser: Browser, request: pytest.FixtureRequest) -> Page:
    context = browser.new_context(viewport={"width": 400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # What the browser showed and logged, and the app's log: evidence for a failure seen
        # only on another machine (CI).
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"failed-{request.node.name}.png"[:200], full_page=True)
        print("--- page text ---\n" + page.locator("body").inner_text()[:3000])
        print("--- browser console ---\n" + "\n".join(console[-40:]))
        print_log_tails(request.getfixturevalue("app_stack"), lines=80)
    context.close()
