import pytest
from pydantic import ValidationError

from billing_app.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """These tests are about defaults: drop what tests/conftest.py set for the other suites."""
    for name in (
        "DATABASE_URL",
        "BILLING_PORT",
        "LOCALSTRIPE_PORT",
        "BILLING_FRAME_ANCESTORS",
        "BILLING_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def make(**values):
    return Settings(_env_file=None, **values)


def test_defaults_follow_the_spec(tmp_path):
    settings = make(billing_data_dir=tmp_path)
    assert settings.billing_port == 3000
    assert settings.public_url == "http://localhost:3000"
    assert settings.database_url == "sqlite:///data/billing.db"
    assert settings.billing_demo_host_port == 3001
    # Development lets the demo connector host frame the page; production only 'self'.
    assert settings.frame_ancestors == "'self' http://localhost:3001"
    assert settings.localstripe_port == 8420
    assert settings.billing_price_monthly_cents == 800
    assert settings.billing_price_yearly_cents == 8000
    assert settings.test_mode
    assert settings.stripe_api_base == "http://127.0.0.1:8420"
    assert settings.stripe_js_url == "http://127.0.0.1:8420/js.stripe.com/v3/"


def test_public_url_follows_the_port_unless_set(tmp_path):
    assert make(billing_data_dir=tmp_path, billing_port=3100).public_url == "http://localhost:3100"
    assert (
        make(billing_data_dir=tmp_path, billing_public_url="https://pay.example.com/").public_url
        == "https://pay.example.com"
    )


def test_environment_and_dotenv_are_read(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "BILLING_PORT=3555\nBILLING_FRAME_ANCESTORS=\"'self' https://mail.example.com\"\n"
    )
    monkeypatch.setenv("LOCALSTRIPE_PORT", "9999")
    settings = Settings(_env_file=env_file, billing_data_dir=tmp_path)
    assert settings.billing_port == 3555
    assert settings.localstripe_port == 9999
    assert settings.frame_ancestors == "'self' https://mail.example.com"


def test_launch_secret_is_generated_once_and_kept(tmp_path):
    first = make(billing_data_dir=tmp_path).launch_secret
    assert len(first) >= 32
    assert make(billing_data_dir=tmp_path).launch_secret == first
    assert (tmp_path / ".launch_secret").stat().st_mode & 0o077 == 0
    configured = "configured-secret-of-32-bytes-ok!"
    assert (
        make(billing_data_dir=tmp_path, billing_launch_secret=configured).launch_secret
        == configured.encode()
    )


def test_real_stripe_needs_all_three_keys(tmp_path):
    with pytest.raises(ValidationError, match="STRIPE_PUBLISHABLE_KEY"):
        make(billing_data_dir=tmp_path, stripe_secret_key="sk_test_123")
    settings = make(
        billing_data_dir=tmp_path,
        stripe_secret_key="sk_test_123",
        stripe_publishable_key="pk_test_123",
        stripe_webhook_secret="whsec_123",
    )
    assert not settings.test_mode
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.stripe_js_url == "https://js.stripe.com/v3/"
    assert settings.webhook_secret == "whsec_123"
    assert "sk_test_123" not in repr(settings)


@pytest.mark.parametrize(
    "field, value",
    [
        ("billing_port", "0"),
        ("billing_port", "70000"),
        ("billing_port", "three thousand"),
        ("billing_frame_ancestors", "'self'; script-src *"),
        ("billing_frame_ancestors", "   "),
        ("billing_public_url", "localhost:3000"),
        ("database_url", "mysql://x"),
        ("billing_currency", "dollars"),
        ("billing_price_monthly_cents", "-5"),
        ("billing_launch_ttl_seconds", "3600"),
        ("stripe_secret_key", "pk_live_oops"),
        ("billing_seller_name", "  "),
        ("billing_seller_name", "Evil\x00Corp"),
        ("billing_seller_address", "x" * 501),
        ("billing_seller_tax_id", "DE\r123"),
        ("billing_invoice_paper", "a3"),
        ("billing_pdf_link_ttl_seconds", "86400"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(tmp_path, field, value):
    with pytest.raises(ValidationError) as info:
        make(billing_data_dir=tmp_path, **{field: value})
    assert field in str(info.value)


def test_invoice_seller_block_and_pdf_settings(tmp_path):
    defaults = make(billing_data_dir=tmp_path)
    assert defaults.billing_seller_name == "iEnterprise Inc."
    # Demo values, so that the demo's invoices show a whole seller block.
    assert defaults.seller_address_lines == [
        "100 Market Street",
        "San Francisco, CA 94105",
        "United States",
    ]
    assert defaults.billing_seller_tax_id == "US EIN 12-3456789"
    assert make(billing_data_dir=tmp_path, billing_seller_address="").seller_address_lines == []
    assert (defaults.billing_invoice_paper, defaults.billing_pdf_link_ttl_seconds) == ("a4", 60)
    settings = make(
        billing_data_dir=tmp_path,
        billing_seller_address=" 1 Harbour Road ;Springfield\n USA; ",
        billing_invoice_paper="Letter",
    )
    assert settings.seller_address_lines == ["1 Harbour Road", "Springfield", "USA"]
    assert settings.billing_invoice_paper == "letter"
