"""The plans an account can be on and the billing intervals, with the values stored and sent to
Stripe."""

from __future__ import annotations

from enum import StrEnum


class Plan(StrEnum):
    FREE = "free"
    UNLIMITED = "unlimited"


class Interval(StrEnum):
    MONTH = "month"
    YEAR = "year"
