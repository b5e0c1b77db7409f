"""Billing Details: what the form accepts, how it is tidied, and the message for what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from billing_app.models import Account, AuditLog
from billing_app.services.activity import display_row
from billing_app.services.audit import AuditAction
from billing_app.services.billing_details import (
    InvalidDetails,
    brief,
    form_defaults,
    parse_details,
    store_details,
    stored_details,
    tax_id_rules,
)
from billing_app.services.countries import COUNTRIES, COUNTRY_NAMES
from billing_app.stripe.snapshots import BillingDetails

BAD_EMAIL = "Enter one invoice email address, such as billing@example.com."


def form(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Acme GmbH",
        "email": "billing@acme.test",
        "line1": "Friedrichstraße 1",
        "line2": "",
        "city": "Berlin",
        "postal_code": "10117",
        "state": "",
        "country": "DE",
        "tax_id_type": "eu_vat",
        "tax_id_value": "DE123456789",
    }
    return values | changes


def test_countries_are_iso_3166_sorted_by_name():
    assert len(COUNTRIES) == 249 == len(COUNTRY_NAMES)
    assert [name for _, name in COUNTRIES] == sorted(name for _, name in COUNTRIES)
    assert (COUNTRY_NAMES["DE"], COUNTRY_NAMES["CH"], COUNTRY_NAMES["GB"]) == (
        "Germany",
        "Switzerland",
        "United Kingdom",
    )


def test_tax_id_types_depend_on_the_country():
    assert [r.type for r in tax_id_rules("DE")] == ["eu_vat"]
    assert [r.type for r in tax_id_rules("ES")] == ["eu_vat", "es_cif"]
    assert [r.type for r in tax_id_rules("GB")] == ["gb_vat"]
    assert [r.type for r in tax_id_rules("CH")] == ["ch_vat"]
    assert [r.type for r in tax_id_rules("US")] == ["us_ein"]
    assert tax_id_rules("AQ") == () and tax_id_rules("") == ()
    # Every documented example passes its own rule.
    for country in ("DE", "FR", "GR", "NL", "IE", "ES", "GB", "CH", "US", "AU", "CA", "NO", "IN"):
        for rule in tax_id_rules(country):
            parsed = parse_details(
                form(country=country, tax_id_type=rule.type, tax_id_value=rule.example)
            )
            assert parsed.tax_id_value == rule.example


@pytest.mark.parametrize(
    ("country", "kind", "typed", "stored"),
    [
        ("DE", "eu_vat", " de 123 456 789 ", "DE123456789"),
        ("GB", "gb_vat", "gb123456789", "GB123456789"),
        ("US", "us_ein", "12-3456789", "12-3456789"),
        ("CH", "ch_vat", "che-123.456.789  mwst", "CHE-123.456.789 MWST"),
        ("AU", "au_abn", "12 345 678 912", "12345678912"),
    ],
)
def test_tax_ids_are_tidied(country, kind, typed, stored):
    details = parse_details(form(country=country, tax_id_type=kind, tax_id_value=typed))
    assert (details.tax_id_type, details.tax_id_value) == (kind, stored)


def test_a_whole_form_is_tidied():
    details = parse_details(
        form(name="  Acme   GmbH ", email=" Billing@ACME.test ", line2="  ", state=" Berlin ")
    )
    assert details == BillingDetails(
        name="Acme GmbH",
        email="billing@acme.test",
        line1="Friedrichstraße 1",
        city="Berlin",
        postal_code="10117",
        state="Berlin",
        country="DE",
        tax_id_type="eu_vat",
        tax_id_value="DE123456789",
    )
    assert parse_details(form(tax_id_type="", tax_id_value="")).tax_id_type == ""


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "  "}, "Enter the company name."),
        ({"name": "x" * 201}, "The company name can have at most 200 characters."),
        ({"country": ""}, "Choose a country."),
        ({"country": "XX"}, "Choose a country from the list."),
        (
            {"email": "not an email"},
            "Enter one invoice email address, such as billing@example.com.",
        ),
        ({"email": None}, "Enter one invoice email address, such as billing@example.com."),
        ({"line1": "a\x00b"}, "The address cannot contain control characters."),
        ({"postal_code": "1" * 21}, "The postal code can have at most 20 characters."),
        ({"city": "c" * 101}, "The city can have at most 100 characters."),
        (
            {"tax_id_value": "DE12345"},
            "Enter a valid EU VAT number, such as DE123456789.",
        ),
        (
            {"tax_id_value": "FR123456789"},  # a French number for a German company
            "Enter a valid EU VAT number, such as DE123456789.",
        ),
        ({"tax_id_type": "gb_vat"}, "Choose a tax ID type used in Germany."),
        ({"tax_id_type": "nonsense"}, "Choose a tax ID type used in Germany."),
        ({"tax_id_value": "  "}, "Enter your EU VAT number, or choose “No tax ID”."),
        ({"tax_id_type": ""}, "Choose the type of your tax ID."),
        (
            {"country": "US", "tax_id_type": "us_ein", "tax_id_value": "123456789"},
            "Enter a valid US EIN number, such as 12-3456789.",
        ),
        (
            {"country": "CH", "tax_id_type": "ch_vat", "tax_id_value": "CHE123456789"},
            "Enter a valid Swiss VAT number, such as CHE-123.456.789 MWST.",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(changes, message):
    with pytest.raises(InvalidDetails) as refused:
        parse_details(form(**changes))
    assert refused.value.message == message


def test_the_accounts_copy_defaults_and_summary_line():
    account = Account(slug="acme", name="Acme", admin_email="admin@acme.test")
    assert stored_details(account) is None
    assert form_defaults(account) == BillingDetails(name="Acme", email="admin@acme.test")
    details = parse_details(form())
    store_details(account, details)
    assert stored_details(account) == form_defaults(account) == details
    assert account.billing_line2 is None  # empty is stored as NULL
    assert brief(details) == "Acme GmbH · Berlin, Germany · DE123456789"
    assert brief(None) == ""


def test_the_activity_tab_names_the_action():
    entry = AuditLog(
        id=1, actor="admin@acme.test", action=AuditAction.BILLING_DETAILS, outcome="ok", detail="{}"
    )
    assert display_row(entry).what == "Billing details updated"
