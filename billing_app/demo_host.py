"""A demo connector host for development: a mock mail client whose sidebar opens the Billing Page.

`billing-admin run` starts it on `http://localhost:$BILLING_DEMO_HOST_PORT` (development only).
The page's `$` button asks this host's own backend (`POST /api/launch-link`) for a launch link,
as the real connector's backend does, and opens it in the sidebar's iframe. The token is signed
here independently of `billing_app.services.launch_tokens`, following the documented format
(docs/deployment.md), so the demo also checks that format: it plays the connector. A reload of
the host reopens the sidebar's page (remembered in the tab's sessionStorage) without a new link.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from billing_app.settings import Settings, get_settings

# The seeded demo accounts (billing_app/services/seeding.py): slug → (company, admin email).
DEMO_ACCOUNTS = {
    "demo": ("Acme Corp", "admin@acme.test"),
    "free-demo": ("Globex", "admin@globex.test"),
}


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def connector_launch_token(
    secret: bytes, account: str, email: str, ttl_seconds: int, now: float | None = None
) -> str:
    """`base64url(JSON {"a", "e", "x", "n"}) "." base64url(HMAC-SHA256(secret, first part))`."""
    claims = {
        "a": account,
        "e": email,
        "x": int(time.time() if now is None else now) + ttl_seconds,
        "n": secrets.token_urlsafe(12),  # the page redeems each id once
    }
    payload = _base64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{_base64url(signature)}"


def launch_link(settings: Settings, account: str) -> str:
    _company, email = DEMO_ACCOUNTS[account]
    token = connector_launch_token(
        settings.launch_secret, account, email, settings.billing_launch_ttl_seconds
    )
    return f"{settings.public_url}/?launch={token}"


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mail — demo connector host</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; height: 100vh; display: flex; font: 14px system-ui, sans-serif;
         color: #1f2933; background: #f5f7fa; }
  nav { width: 300px; border-right: 1px solid #d9e2ec; background: #fff; overflow: auto; }
  nav h1 { font-size: 16px; margin: 0; padding: 14px 16px; border-bottom: 1px solid #d9e2ec; }
  nav ul { list-style: none; margin: 0; padding: 0; }
  nav li { padding: 10px 16px; border-bottom: 1px solid #f0f4f8; }
  nav li.open { background: #e6f0ff; }
  nav li b { display: block; }
  nav li span { color: #486581; }
  main { flex: 1; padding: 24px 32px; overflow: auto; min-width: 0; }
  main h2 { margin-top: 0; }
  aside { width: 360px; display: flex; flex-direction: column; border-left: 1px solid #d9e2ec;
          background: #fff; }
  aside header { padding: 12px 14px; border-bottom: 1px solid #d9e2ec; font-weight: 600; }
  aside header small { display: block; font-weight: 400; color: #486581; }
  #sidebar-body { flex: 1; position: relative; min-height: 0; }
  #sidebar-body p { padding: 14px; color: #486581; }
  iframe { position: absolute; inset: 0; width: 100%; height: 100%; border: 0; }
  footer { display: flex; gap: 8px; padding: 10px 14px; border-top: 1px solid #d9e2ec; }
  button { font: inherit; cursor: pointer; border: 1px solid #bcccdc; background: #fff;
           border-radius: 6px; padding: 6px 10px; }
  #billing { font-weight: 700; width: 40px; }
  #billing[aria-pressed="true"] { background: #2680c2; color: #fff; border-color: #2680c2; }
</style>
</head>
<body>
<nav aria-label="Inbox">
  <h1>Inbox</h1>
  <ul>
    <li class="open"><b>Dana Whitfield</b><span>Q3 contract renewal</span></li>
    <li><b>Support</b><span>Your ticket #4821 was updated</span></li>
    <li><b>Lee Park</b><span>Lunch on Thursday?</span></li>
    <li><b>Newsletter</b><span>This week in mail</span></li>
  </ul>
</nav>
<main>
  <h2>Q3 contract renewal</h2>
  <p><b>Dana Whitfield</b> &lt;dana@example.com&gt;</p>
  <p>Hi, attached is the renewal for next quarter. Let me know if the license count is right.</p>
</main>
<aside aria-label="Connector">
  <header>Connector<small id="account"></small></header>
  <div id="sidebar-body"><p>Click $ below to open the Billing Page.</p></div>
  <footer>
    <button id="billing" type="button" aria-label="Billing" aria-pressed="false">$</button>
    <button id="switch" type="button"></button>
  </footer>
</aside>
<script>
const ACCOUNTS = __ACCOUNTS__;
const slugs = Object.keys(ACCOUNTS);
// What the sidebar showed, kept for this tab: a reload reopens the page without a new launch.
const SIDEBAR_KEY = "demo-host-sidebar";
const saved = JSON.parse(sessionStorage.getItem(SIDEBAR_KEY) || "{}");
let current = slugs.includes(saved.account) ? saved.account : slugs[0];
const body = document.getElementById("sidebar-body");
const billing = document.getElementById("billing");
const switcher = document.getElementById("switch");

function remember(page) {
  sessionStorage.setItem(SIDEBAR_KEY, JSON.stringify({account: current, page}));
}

function showFrame(src) {
  const frame = document.createElement("iframe");
  frame.title = "Billing Page";
  frame.src = src;
  body.replaceChildren(frame);
  billing.setAttribute("aria-pressed", "true");
}

function showAccount() {
  const [company, email] = ACCOUNTS[current];
  document.getElementById("account").textContent = company + " · " + email;
  const other = slugs[(slugs.indexOf(current) + 1) % slugs.length];
  switcher.textContent = "Switch to " + ACCOUNTS[other][0];
}

async function openBilling() {
  // A fresh link each time: they are single-use and expire within minutes.
  const response = await fetch("/api/launch-link", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({account: current}),
  });
  if (!response.ok) {
    body.innerHTML = "<p>Could not get a launch link.</p>";
    return;
  }
  const {url} = await response.json();
  showFrame(url);
  // The token is single-use and the page drops it from its address once redeemed: the page
  // itself, without the token, is what a reload opens (the frame's session keeps it signed in).
  const page = new URL(url);
  page.search = "";
  remember(page.href);
}

billing.addEventListener("click", openBilling);
switcher.addEventListener("click", () => {
  current = slugs[(slugs.indexOf(current) + 1) % slugs.length];
  showAccount();
  remember(null);
  if (billing.getAttribute("aria-pressed") === "true") openBilling();
});
showAccount();
if (saved.page) showFrame(saved.page);
</script>
</body>
</html>
"""


def host_page() -> str:
    return _PAGE.replace("__ACCOUNTS__", json.dumps(DEMO_ACCOUNTS))


async def _index(_request: Request) -> Response:
    return HTMLResponse(host_page())


async def _launch_link(request: Request) -> Response:
    try:
        account = (await request.json())["account"]
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "bad_request"}, status_code=400)
    if account not in DEMO_ACCOUNTS:
        return JSONResponse({"error": "unknown_account"}, status_code=404)
    url = launch_link(get_settings(), account)
    return JSONResponse({"url": url}, headers={"Cache-Control": "no-store"})


app = Starlette(
    routes=[
        Route("/", _index),
        Route("/api/launch-link", _launch_link, methods=["POST"]),
    ]
)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="The demo connector host (development only).")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # Loopback only: it hands out launch links to anyone who asks.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
