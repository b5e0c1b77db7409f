"""ASGI middleware adding the Content-Security-Policy and hardening headers to every HTTP
response."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing_app.settings import Settings

# The inline <script>s of the prerendered pages (React Router's hydration data and Reflex's
# theme bootstrap); external ones (with src=) are allowed by origin instead.
_INLINE_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script>", re.DOTALL | re.IGNORECASE)
# Stripe's published CSP sources for Stripe.js, its Elements frames and 3-D Secure challenges.
_STRIPE_SCRIPT_SOURCES = ("https://js.stripe.com", "https://*.js.stripe.com")
_STRIPE_FRAME_SOURCES = (
    "https://js.stripe.com",
    "https://*.js.stripe.com",
    "https://hooks.stripe.com",
)
HSTS = b"max-age=31536000; includeSubDomains"
NO_STORE = b"no-store"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def inline_script_hashes(static_dir: Path) -> list[str]:
    """CSP hash sources of the inline scripts of the built pages (`.web/build/client/**/*.html`)."""
    sources = set()
    for page in static_dir.glob("**/*.html"):
        for attributes, body in _INLINE_SCRIPT.findall(page.read_bytes()):
            if b"src=" not in attributes and body:
                digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
                sources.add(f"'sha256-{digest}'")
    return sorted(sources)


def content_security_policy(settings: Settings, script_hashes: list[str]) -> str:
    public = _origin(settings.public_url)
    websocket = public.replace("http", "ws", 1)  # Reflex's event channel: ws:// or wss://
    stripe_js = _origin(settings.stripe_js_url)
    stripe_api = _origin(settings.stripe_api_base)
    if settings.test_mode:  # localstripe serves its fake Stripe.js, API and 3-D Secure box itself
        script_stripe, frame_stripe = (stripe_js,), (stripe_js,)
    else:
        script_stripe, frame_stripe = _STRIPE_SCRIPT_SOURCES, _STRIPE_FRAME_SOURCES
    directives = {
        "default-src": ["'self'"],
        # 'unsafe-eval': Reflex runs rx.call_script payloads with eval() (its state.js); the card
        # form and the launch-token clean-up use them. Inline scripts only by their hashes.
        "script-src": ["'self'", "'unsafe-eval'", *script_hashes, *script_stripe],
        # Radix Themes sets style attributes and emotion injects <style> elements at run time:
        # neither can carry a nonce or a stable hash, so styles need 'unsafe-inline'.
        "style-src": ["'self'", "'unsafe-inline'"],
        "connect-src": ["'self'", public, websocket, stripe_api],
        "frame-src": list(frame_stripe),
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        # Only the connector's origins may frame the page (BILLING_FRAME_ANCESTORS).
        "frame-ancestors": [settings.frame_ancestors],
    }
    return "; ".join(
        f"{name} {' '.join(dict.fromkeys(sources))}" for name, sources in directives.items()
    )


def _no_store(path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """The page and the API (license answers, PDFs) are never cached; hashed assets may be."""
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    return content_type.startswith(b"text/html") or path.startswith("/api/")


def with_security_headers(settings: Settings, static_dir: Path) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware; `static_dir` holds the built pages whose inline scripts the CSP allows."""
    fixed = [
        (b"x-content-type-options", b"nosniff"),
        # Launch and PDF links carry tokens: never send our URLs to other sites.
        (b"referrer-policy", b"no-referrer"),
    ]
    if settings.public_url.startswith("https://"):
        fixed.append((b"strict-transport-security", HSTS))
    policy: list[bytes] = []  # built at the first response: the pages are built after the app loads

    def csp() -> bytes:
        if not policy:
            hashes = inline_script_hashes(static_dir)
            header = content_security_policy(settings, hashes).encode()
            if not hashes:
                return header  # no build yet: try again on the next response
            policy.append(header)
        return policy[0]

    replaced = {name for name, _ in fixed} | {b"content-security-policy"}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = [
                        (k, v) for k, v in message.get("headers", []) if k.lower() not in replaced
                    ]
                    headers += [*fixed, (b"content-security-policy", csp())]
                    if _no_store(scope["path"], headers) and not any(
                        k.lower() == b"cache-control" and b"no-store" in v for k, v in headers
                    ):
                        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                        headers.append((b"cache-control", NO_STORE))
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return wrap
