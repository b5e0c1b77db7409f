import pytest

from billing_app.i18n import use_locale
from billing_app.services.emails import InvalidEmail, normalize_email
from billing_app.services.money import format_money


@pytest.mark.parametrize(
    "amount, currency, text",
    [
        (800, "usd", "$8.00"),
        (8000, "usd", "$80.00"),
        (123456789, "usd", "$1,234,567.89"),
        (-2667, "usd", "-$26.67"),
        (500, "eur", "€5.00"),
        (1200, "jpy", "¥1,200"),
        (995, "chf", "CHF9.95"),
        # Three-decimal currencies: Stripe amounts in thousandths.
        (1234, "kwd", "KWD1.234"),
        (0, "usd", "$0.00"),
    ],
)
def test_format_money_in_english(amount, currency, text):
    assert format_money(amount, currency) == text


@pytest.mark.parametrize(
    "amount, currency, text",
    [
        (8000, "usd", "80,00\xa0$"),
        (123456789, "eur", "1.234.567,89\xa0€"),
        (-2667, "usd", "-26,67\xa0$"),
        (1200, "jpy", "1.200\xa0¥"),
        (1234, "kwd", "1,234\xa0KWD"),
    ],
)
def test_format_money_in_german(amount, currency, text):
    assert format_money(amount, currency, "de") == text
    with use_locale("de"):
        assert format_money(amount, currency) == text


@pytest.mark.parametrize(
    "raw, email",
    [("  Alice@ACME.test ", "alice@acme.test"), ("b.o+b@sub.acme.test", "b.o+b@sub.acme.test")],
)
def test_emails_are_normalised(raw, email):
    assert normalize_email(raw) == email


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "alice",
        "alice@",
        "@acme.test",
        "a@b",
        "a b@acme.test",
        "a@acme.test, b@acme.test",
        "Alice <a@acme.test>",
        "a..b@acme.test",
        42,
        None,
        "a@" + "x" * 250 + ".test",
    ],
)
def test_anything_but_one_address_is_refused(raw):
    with pytest.raises(InvalidEmail):
        normalize_email(raw)
