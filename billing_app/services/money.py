"""Formatting of integer minor-unit amounts for people, in the current locale (Babel's CLDR
formats: "$80.00" in English, "80,00 $" in German)."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

from billing_app.i18n import get_locale

# ISO 4217 currencies without minor units (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}
# Stripe's three-decimal currencies: amounts in thousandths.
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}


def minor_unit_digits(currency: str) -> int:
    currency = currency.lower()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def format_money(amount: int, currency: str, locale: str | None = None) -> str:
    """`format_money(8000, "usd")` → "$80.00" (English) or "80,00 $" (German), `1234, "kwd"` →
    "KWD1.234"; negative amounts (credits) keep their sign."""
    value = Decimal(amount).scaleb(-minor_unit_digits(currency))
    return format_currency(value, currency.upper(), locale=locale or get_locale())
