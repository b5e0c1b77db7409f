"""Configuration, read from the environment and `.env` (the README's settings table).

With no `STRIPE_SECRET_KEY` the app runs in *test mode*: it talks to an
embedded localstripe on 127.0.0.1:`LOCALSTRIPE_PORT` with generated keys.
Secrets that must survive restarts but are not configured (the launch-link
secret, the test-mode webhook secret) are generated once and kept in `data/`.
With `BILLING_ENV=production` none of that is allowed: every setting production
needs must be given, and safe, or the settings do not load.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from billing_app.files import FILE_MODE, private_dir

# A CSP source: 'self', 'none', a scheme ("https:") or an origin with an optional
# wildcard sub-domain and port. Anything else (";", quotes, spaces inside) could
# inject other directives into the header, so it is refused.
_FRAME_SOURCE = re.compile(
    r"^(?:'self'|'none'|[a-z][a-z0-9+.-]*:|"
    r"[a-z][a-z0-9+.-]*://(?:\*\.)?[a-z0-9.-]+(?::\d{1,5})?/?|\*)$",
    re.IGNORECASE,
)
_CURRENCY = re.compile(r"^[a-z]{3}$")
# Seller details are printed on invoices: no control characters (a newline is allowed
# in the address, which may also separate its lines with ";").
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
# Domain separation: the PDF-link key is derived from the launch secret, so a
# launch token can never pass as a PDF link or the other way round.
_PDF_LINK_KEY_LABEL = b"billing-app/invoice-pdf-link/v1"

TEST_MODE_SECRET_KEY = "sk_test_localstripe"
TEST_MODE_PUBLISHABLE_KEY = "pk_test_localstripe"
# HMAC-SHA256 keys shorter than the hash are weaker than it; the connector shares this one.
MIN_LAUNCH_SECRET_BYTES = 32
PRODUCTION = "production"


def _production(info: ValidationInfo) -> bool:
    # billing_env is the first field, so it is validated before the others look at it.
    return info.data.get("billing_env") == PRODUCTION


def _required_in_production(value: object, info: ValidationInfo, what: str) -> None:
    if value is None and _production(info):
        raise ValueError(f"not set: production needs {what}")


def _configured_workers() -> int:
    """Granian's worker count as `reflex run --env prod` chooses it: GRANIAN_WORKERS, else 1
    without Redis (with REFLEX_REDIS_URL, Reflex starts 2 x cores + 1)."""
    try:
        return int(os.environ.get("GRANIAN_WORKERS", "1"))
    except ValueError:
        return 1  # Granian refuses it at start-up with its own message


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # First: the checks of the fields below depend on it. Production refuses test mode,
    # generated secrets, SQLite, plain http and workers without shared state.
    billing_env: Literal["development", "production"] = "development"
    billing_port: int = Field(3000, ge=1, le=65535)
    # The demo connector host `billing-admin run` starts in development (billing_app/demo_host.py).
    billing_demo_host_port: int = Field(3001, ge=1, le=65535)
    # validate_default: production checks that these were given at all.
    billing_public_url: str | None = Field(None, validate_default=True)
    database_url: str = Field("sqlite:///data/billing.db", validate_default=True)
    reflex_redis_url: str | None = Field(None, validate_default=True)
    billing_launch_secret: SecretStr | None = Field(None, validate_default=True)
    # Unset: see `frame_ancestors`.
    billing_frame_ancestors: str | None = None
    stripe_secret_key: SecretStr | None = Field(None, validate_default=True)
    stripe_publishable_key: str | None = Field(None, validate_default=True)
    stripe_webhook_secret: SecretStr | None = Field(None, validate_default=True)
    localstripe_port: int = Field(8420, ge=1, le=65535)
    billing_data_dir: Path = Path("data")

    # Pricing of the Unlimited Version, in minor units of `billing_currency`.
    billing_price_monthly_cents: int = Field(800, gt=0, le=10_000_000)
    billing_price_yearly_cents: int = Field(8000, gt=0, le=100_000_000)
    billing_currency: str = "usd"

    # Launch links expire, after 10 minutes at most.
    billing_launch_ttl_seconds: int = Field(600, ge=10, le=600)
    # A signed-in tab left idle this long goes back to the password prompt (or the launch message).
    billing_session_idle_minutes: int = Field(30, ge=1, le=1440)
    # A sign-in lasts at most this long, however active the tab (a left-open tab cannot stay signed
    # in for ever).
    billing_session_max_hours: int = Field(12, ge=1, le=24)
    # Invoice PDF links are minted on click, single-use, and expire after this
    # (services/invoice_links.py).
    billing_pdf_link_ttl_seconds: int = Field(60, ge=10, le=60)

    # The seller block printed on invoice PDFs (demo values: set your own in production).
    billing_seller_name: str = Field("iEnterprise Inc.", max_length=200)
    billing_seller_address: str = Field(
        "100 Market Street; San Francisco, CA 94105; United States", max_length=500
    )
    billing_seller_tax_id: str = Field("US EIN 12-3456789", max_length=64)
    billing_invoice_paper: Literal["a4", "letter"] = "a4"

    @field_validator("billing_env", mode="before")
    @classmethod
    def _lower_env(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("billing_public_url")
    @classmethod
    def _check_public_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "":
            value = None
        _required_in_production(value, info, "the https:// URL the page is served at")
        if value is None:
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL such as https://billing.example.com")
        if _production(info) and not value.startswith("https://"):
            raise ValueError("must be an https:// URL in production")
        return value.rstrip("/")

    @field_validator("billing_frame_ancestors")
    @classmethod
    def _check_frame_ancestors(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        sources = value.split()
        if not sources:
            raise ValueError("must list at least one source, e.g. 'self'")
        bad = [s for s in sources if not _FRAME_SOURCE.match(s)]
        if bad:
            raise ValueError(f"not a valid CSP source: {' '.join(bad)}")
        # Any site at all, every site of a scheme, or a connector origin over plain http
        # (which anyone on the network path can impersonate).
        too_wide = [
            s for s in sources if s == "*" or s.endswith(":") or s.lower().startswith("http://")
        ]
        if too_wide and _production(info):
            raise ValueError(
                f"too wide for production: {' '.join(too_wide)} (list https:// origins)"
            )
        return " ".join(sources)

    @field_validator("billing_launch_secret")
    @classmethod
    def _check_launch_secret(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        _required_in_production(
            value,
            info,
            f"the launch-link secret shared with the connector "
            f"(at least {MIN_LAUNCH_SECRET_BYTES} bytes)",
        )
        if value is not None and len(value.get_secret_value().encode()) < MIN_LAUNCH_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_LAUNCH_SECRET_BYTES} bytes "
                "(e.g. the output of `openssl rand -base64 48`)"
            )
        return value

    @field_validator("stripe_publishable_key", "stripe_webhook_secret")
    @classmethod
    def _check_required_stripe_setting(cls, value: object, info: ValidationInfo) -> object:
        _required_in_production(
            value, info, "real Stripe (the Dashboard's API keys and webhook secret)"
        )
        return value

    @field_validator("reflex_redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        workers = _configured_workers()
        if value is None and workers > 1 and _production(info):
            raise ValueError(
                f"not set: GRANIAN_WORKERS={workers} workers need Redis to share each tab's state"
            )
        return value

    @field_validator("billing_seller_name", "billing_seller_address", "billing_seller_tax_id")
    @classmethod
    def _check_printable(cls, value: str, info: ValidationInfo) -> str:
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        if info.field_name == "billing_seller_name" and not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("billing_invoice_paper", mode="before")
    @classmethod
    def _lower_paper(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("billing_currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        value = value.strip().lower()
        if not _CURRENCY.match(value):
            raise ValueError("must be a 3-letter ISO currency code such as usd")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str, info: ValidationInfo) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if _production(info) and not value.startswith("postgresql"):
            raise ValueError("must be a PostgreSQL URL (postgresql+psycopg://…) in production")
        return value

    @field_validator("stripe_secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        _required_in_production(
            value, info, "real Stripe (without it the app would run on the embedded test emulator)"
        )
        if value is not None and not value.get_secret_value().startswith(("sk_", "rk_")):
            raise ValueError(
                "must be a secret or restricted key (sk_… or rk_…), never a publishable key"
            )
        return value

    @model_validator(mode="after")
    def _check_stripe_keys(self) -> Settings:
        if self.stripe_secret_key is not None and not (
            self.stripe_publishable_key and self.stripe_webhook_secret
        ):
            raise ValueError(
                "with STRIPE_SECRET_KEY set, STRIPE_PUBLISHABLE_KEY and "
                "STRIPE_WEBHOOK_SECRET are required too"
            )
        return self

    # Derived values -------------------------------------------------------

    @property
    def test_mode(self) -> bool:
        """True when no real Stripe key is configured: use the embedded localstripe."""
        return self.stripe_secret_key is None

    @property
    def stripe_live_mode(self) -> bool:
        return self.stripe_api_key.startswith(("sk_live_", "rk_live_"))

    @property
    def public_url(self) -> str:
        return self.billing_public_url or f"http://localhost:{self.billing_port}"

    @property
    def demo_host_url(self) -> str:
        return f"http://localhost:{self.billing_demo_host_port}"

    @property
    def frame_ancestors(self) -> str:
        """CSP frame-ancestors sources: BILLING_FRAME_ANCESTORS, else 'self' (and, in development,
        the demo connector host, so `make run` can frame the page with no configuration)."""
        if self.billing_frame_ancestors is not None:
            return self.billing_frame_ancestors
        if self.billing_env == "development":
            return f"'self' {self.demo_host_url}"
        return "'self'"

    @property
    def stripe_api_base(self) -> str:
        if self.test_mode:
            return f"http://127.0.0.1:{self.localstripe_port}"
        return "https://api.stripe.com"

    @property
    def stripe_js_url(self) -> str:
        if self.test_mode:
            return f"http://127.0.0.1:{self.localstripe_port}/js.stripe.com/v3/"
        return "https://js.stripe.com/v3/"

    @property
    def stripe_api_key(self) -> str:
        if self.stripe_secret_key is None:
            return TEST_MODE_SECRET_KEY
        return self.stripe_secret_key.get_secret_value()

    @property
    def stripe_publishable(self) -> str:
        return self.stripe_publishable_key or TEST_MODE_PUBLISHABLE_KEY

    @property
    def webhook_secret(self) -> str:
        if self.stripe_webhook_secret is not None:
            return self.stripe_webhook_secret.get_secret_value()
        return self._kept_secret("stripe_webhook_secret", prefix="whsec_")

    @property
    def launch_secret(self) -> bytes:
        if self.billing_launch_secret is not None:
            return self.billing_launch_secret.get_secret_value().encode()
        return self._kept_secret("launch_secret").encode()

    @property
    def pdf_link_secret(self) -> bytes:
        return hmac.new(self.launch_secret, _PDF_LINK_KEY_LABEL, hashlib.sha256).digest()

    @property
    def seller_address_lines(self) -> list[str]:
        return [
            line.strip() for line in re.split(r"[;\n]", self.billing_seller_address) if line.strip()
        ]

    @property
    def localstripe_store(self) -> Path:
        return self.billing_data_dir / "localstripe.pickle"

    def _kept_secret(self, name: str, prefix: str = "") -> str:
        """A random secret generated on first use and kept (mode 0600) in the data dir."""
        return _kept_secret((self.billing_data_dir / f".{name}").absolute(), prefix)


# Kept secrets by file: read once per process (launch links and webhooks need them on every
# request).
_kept_secrets: dict[Path, str] = {}


def _kept_secret(path: Path, prefix: str) -> str:
    value = _kept_secrets.get(path)
    if value is None:
        value = _read_or_create_secret(path, prefix)
        if value:  # never keep what a racing creator had not written yet
            _kept_secrets[path] = value
    return value


def _read_or_create_secret(path: Path, prefix: str) -> str:
    if not path.exists():
        private_dir(path.parent)
        value = prefix + secrets.token_urlsafe(32)
        # O_EXCL: if two processes race, one creates it and both read the winner; 0600 from the
        # start.
        try:
            with os.fdopen(
                os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE),
                "w",
                encoding="ascii",
            ) as handle:
                handle.write(value)
        except FileExistsError:
            pass
    return path.read_text(encoding="ascii").strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = Settings()
    private_dir(settings.billing_data_dir)
    return settings


def settings_problems(error: ValidationError) -> list[str]:
    """One line per bad, missing or unsafe setting, named by its environment variable."""
    lines = []
    for problem in error.errors():
        variable = "_".join(map(str, problem["loc"])).upper() or "settings"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{variable}: {message}")
    return lines


def get_settings_or_exit(program: str) -> Settings:
    """get_settings(), or exit 1 naming each bad setting (no traceback): where the app starts."""
    try:
        return get_settings()
    except ValidationError as error:
        for line in settings_problems(error):
            print(f"{program}: error: {line}", file=sys.stderr)
        raise SystemExit(1) from None
