import pytest

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
        (1200, "jpy", "¥1,200".replace("¥", "") + " JPY"),
        (995, "chf", "9.95 CHF"),
        (0, "usd", "$0.00"),
    ],
)
def test_format_money(amount, currency, text):
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
