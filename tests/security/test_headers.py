"""Attack: a page without a real Content-Security-Policy runs whatever script an injection
brings, talks to any host, can be cached with account data, and its websocket accepts
events from any site's pages. The app's own middleware chain (billing_app.py) and
rxconfig.py must close all of that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from billing_app.settings import Settings, get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _inner_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", lambda _: HTMLResponse("<!doctype html><title>Billing</title>")),
            Route("/api/v1/licenses/check", lambda _: JSONResponse({"licensed": True})),
            Route(
                "/api/invoices/in_1/pdf", lambda _: Response(b"%PDF-", media_type="application/pdf")
            ),
            Route(
                "/assets/app.js",
                lambda _: PlainTextResponse("", headers={"cache-control": "max-age=31536000"}),
            ),
        ]
    )


@pytest.fixture(scope="module")
def client() -> TestClient:
    """The inner app behind the very middleware billing_app.py puts in front of every response (the
    last, outermost, of its transformers)."""
    import billing_app.billing_app as wiring

    transformers = wiring.app.api_transformer
    assert isinstance(transformers, list) and not isinstance(transformers[-1], Starlette)
    return TestClient(transformers[-1](_inner_app()))


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    return {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}


@pytest.mark.parametrize(
    "path", ["/", "/api/v1/licenses/check", "/api/invoices/in_1/pdf", "/assets/app.js"]
)
def test_every_response_carries_a_restrictive_policy(client: TestClient, path: str):
    policy = directives(client.get(path))
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'self'", "http://connector.test"]
    # No injected inline script or foreign host runs: inline scripts only by hash.
    assert "'unsafe-inline'" not in policy["script-src"]
    assert not any(source in ("*", "https:", "http:", "data:") for source in policy["script-src"])
    settings = get_settings()
    public = settings.public_url
    assert set(policy["connect-src"]) <= {
        "'self'",
        public,
        public.replace("http", "ws", 1),
        settings.stripe_api_base,
    }


@pytest.mark.parametrize("path", ["/", "/api/v1/licenses/check", "/api/invoices/in_1/pdf"])
def test_the_page_the_api_and_pdfs_are_never_cached(client: TestClient, path: str):
    assert "no-store" in client.get(path).headers["cache-control"]


def test_hashed_assets_keep_their_caching(client: TestClient):
    assert client.get("/assets/app.js").headers["cache-control"] == "max-age=31536000"


def test_the_websocket_accepts_only_the_public_origin(tmp_path: Path):
    """Reflex's socket.io server (and its CORS) take rxconfig's cors_allowed_origins."""
    env = os.environ | {
        "BILLING_PUBLIC_URL": "https://billing.example.com/",
        "BILLING_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, rxconfig; print(json.dumps(list(rxconfig.config.cors_allowed_origins)))",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == ["https://billing.example.com"]


def real_stripe(tmp_path: Path, **values) -> Settings:
    return Settings(
        _env_file=None,
        billing_data_dir=tmp_path,
        stripe_secret_key="sk_live_x",
        stripe_publishable_key="pk_live_x",
        stripe_webhook_secret="whsec_x",
        **values,
    )


def test_real_stripe_gets_only_stripes_hosts(tmp_path: Path):
    from billing_app.api.security_headers import content_security_policy

    policy = content_security_policy(
        real_stripe(tmp_path, billing_public_url="https://billing.example.com"), []
    )
    parsed = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert "https://js.stripe.com" in parsed["script-src"]
    assert "https://js.stripe.com" in parsed["frame-src"]
    assert parsed["connect-src"] == [
        "'self'",
        "https://billing.example.com",
        "wss://billing.example.com",
        "https://api.stripe.com",
    ]


def test_hsts_only_when_the_public_url_is_https(tmp_path: Path):
    from billing_app.api.security_headers import with_security_headers

    for public_url, hsts in (
        ("https://billing.example.com", True),
        ("http://localhost:3000", False),
    ):
        settings = real_stripe(tmp_path, billing_public_url=public_url)
        response = TestClient(with_security_headers(settings, tmp_path)(_inner_app())).get("/")
        assert ("strict-transport-security" in response.headers) is hsts
        if hsts:
            assert (
                response.headers["strict-transport-security"]
                == "max-age=31536000; includeSubDomains"
            )


def test_inline_scripts_of_the_built_pages_are_allowed_by_hash_only(tmp_path: Path):
    from billing_app.api.security_headers import inline_script_hashes

    script = b'window.__reactRouterContext = {"basename": "/"};'
    (tmp_path / "index.html").write_bytes(
        b"<html><script>"
        + script
        + b'</script><script type="module" src="/assets/a.js"></script></html>'
    )
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    assert inline_script_hashes(tmp_path) == [f"'sha256-{digest}'"]
