"""Formatting of integer minor-unit amounts for people."""

from __future__ import annotations

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}
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


def format_money(amount: int, currency: str) -> str:
    """`format_money(80000, "usd")` → "$800.00"; negative amounts (credits) keep their sign."""
    currency = currency.lower()
    sign = "-" if amount < 0 else ""
    units = abs(amount)
    number = f"{units:,}" if currency in ZERO_DECIMAL else f"{units // 100:,}.{units % 100:02d}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"
