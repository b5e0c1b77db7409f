"""ASGI middleware adding the embedding and hardening headers to every HTTP response."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def security_headers(frame_ancestors: str) -> list[tuple[bytes, bytes]]:
    return [
        # Only the connector's origins may frame the page (BILLING_FRAME_ANCESTORS).
        (b"content-security-policy", f"frame-ancestors {frame_ancestors}".encode()),
        (b"x-content-type-options", b"nosniff"),
        # Launch and PDF links carry tokens: never send our URLs to other sites.
        (b"referrer-policy", b"no-referrer"),
    ]


def with_security_headers(frame_ancestors: str) -> Callable[[ASGIApp], ASGIApp]:
    headers = security_headers(frame_ancestors)
    names = {name for name, _ in headers}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                    message = {**message, "headers": kept + headers}
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return wrap
