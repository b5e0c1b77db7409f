"""The page inside the connector's iframe: allowed origins frame it, others are refused by CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def _frame_page(browser, parent_origin: str, src: str):
    context = browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    html = (
        f'<!doctype html><title>Connector</title><iframe id="billing" src="{src}" '
        'style="width:380px;height:800px"></iframe>'
    )
    page.route(
        f"{parent_origin}/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{parent_origin}/")
    return context, page, violations


def test_allowed_connector_origin_can_frame_the_page(browser, launch):
    context, page, violations = _frame_page(browser, "http://connector.test", launch("demo"))
    frame = page.frame_locator("#billing")
    expect(frame.get_by_role("heading", name="Acme Corp")).to_be_visible(timeout=20_000)
    expect(frame.locator("#licenses-summary")).to_have_text("3 of 10 licenses used")
    # Reflex keeps its session in sessionStorage, so the framed page needs no cookies.
    frame.get_by_role("tab", name="User Management").click()
    expect(frame.get_by_text("alice@acme.test")).to_be_visible()
    assert violations == []  # the framed page runs under its CSP without a refusal
    context.close()


def test_other_origin_is_refused_by_csp(browser, launch):
    context, page, refused = _frame_page(browser, "http://evil.test", launch("demo"))
    page.wait_for_timeout(3000)
    frame = page.frames[1] if len(page.frames) > 1 else None
    assert frame is None or "Acme Corp" not in frame.content()
    assert any("frame-ancestors" in text for text in refused), refused
    context.close()
