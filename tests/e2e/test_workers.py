"""Production mode only: several app workers share the session state through Redis."""

from __future__ import annotations

import os

import psutil
import pytest
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("REFLEX_REDIS_URL"), reason="needs Redis (production-mode pass)"
    ),
]


def _worker_pids_with_browser_connections(app_stack, port: int) -> set[int]:
    app = psutil.Process(app_stack.process("app").pid)
    pids = set()
    for process in app.children(recursive=True):
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in connections):
            pids.add(process.pid)
    return pids


def test_a_tab_keeps_its_state_across_workers(browser, launch, app_stack, app_settings):
    page = browser.new_context().new_page()
    page.goto(launch("demo"))
    expect(page.locator("#licenses-summary")).to_have_text("3 of 10 licenses used")
    served_by: set[int] = set()
    for _ in range(8):
        # Each reload opens a new websocket, accepted by whichever worker is free;
        # the tab's binding (backend-only state) must come back from Redis.
        page.reload()
        expect(page.get_by_role("heading", name="Acme Corp")).to_be_visible()
        expect(page.locator("#licenses-summary")).to_have_text("3 of 10 licenses used")
        served_by |= _worker_pids_with_browser_connections(app_stack, app_settings.billing_port)
    assert len(served_by) >= 2, f"all reloads were served by one worker: {served_by}"
    page.context.close()
