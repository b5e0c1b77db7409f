"""Billing Details: the company, address, invoice email and tax ID that invoices are made out to.

The form is checked here, each rule with its own message, before anything is sent. Stripe then
holds the details (the customer's name, email, address and tax ID, which it copies onto each
invoice when it finalizes it) and the account keeps a copy for the page (`billing_*` columns).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields

from billing_app.errors import ErrorCode, UserError
from billing_app.i18n import N_, _
from billing_app.models import Account
from billing_app.services.countries import COUNTRY_NAMES, country_name
from billing_app.services.emails import InvalidEmail, normalize_email
from billing_app.stripe.snapshots import BillingDetails


class InvalidDetails(UserError):
    """The form cannot be saved; `message` says why, for the user."""

    code = ErrorCode.INVALID_BILLING_DETAILS


@dataclass(frozen=True)
class TaxIdRule:
    """A tax ID type Stripe supports for a country, with its format (Customer tax IDs)."""

    type: str  # Stripe's `type` enum
    label: str
    example: str
    pattern: str  # matched against the whole value, after `normalize_tax_id`


# EU VAT numbers by country: Stripe's documented examples and the VIES formats. Greece's prefix
# is EL, not its ISO code.
_EU_VAT = {
    "AT": ("ATU12345678", r"ATU\d{8}"),
    "BE": ("BE0123456789", r"BE[01]\d{9}"),
    "BG": ("BG0123456789", r"BG\d{9,10}"),
    "CY": ("CY12345678Z", r"CY\d{8}[A-Z]"),
    "CZ": ("CZ1234567890", r"CZ\d{8,10}"),
    "DE": ("DE123456789", r"DE\d{9}"),
    "DK": ("DK12345678", r"DK\d{8}"),
    "EE": ("EE123456789", r"EE\d{9}"),
    "ES": ("ESA1234567Z", r"ES[A-Z0-9]\d{7}[A-Z0-9]"),
    "FI": ("FI12345678", r"FI\d{8}"),
    "FR": ("FRAB123456789", r"FR[A-Z0-9]{2}\d{9}"),
    "GR": ("EL123456789", r"EL\d{9}"),
    "HR": ("HR12345678912", r"HR\d{11}"),
    "HU": ("HU12345678", r"HU\d{8}"),
    "IE": ("IE1234567AB", r"IE(\d{7}[A-Z]{1,2}|\d[A-Z+*]\d{5}[A-Z])"),
    "IT": ("IT12345678912", r"IT\d{11}"),
    "LT": ("LT123456789123", r"LT(\d{9}|\d{12})"),
    "LU": ("LU12345678", r"LU\d{8}"),
    "LV": ("LV12345678912", r"LV\d{11}"),
    "MT": ("MT12345678", r"MT\d{8}"),
    "NL": ("NL123456789B12", r"NL\d{9}B\d{2}"),
    "PL": ("PL1234567890", r"PL\d{10}"),
    "PT": ("PT123456789", r"PT\d{9}"),
    "RO": ("RO1234567891", r"RO\d{2,10}"),
    "SE": ("SE123456789123", r"SE\d{12}"),
    "SI": ("SI12345678", r"SI\d{8}"),
    "SK": ("SK1234567891", r"SK\d{10}"),
}
_OTHER_RULES: dict[str, tuple[TaxIdRule, ...]] = {
    "AE": (TaxIdRule("ae_trn", "UAE TRN", "123456789012345", r"\d{15}"),),
    "AU": (TaxIdRule("au_abn", "Australian ABN", "12345678912", r"\d{11}"),),
    "BR": (
        TaxIdRule(
            "br_cnpj", "Brazilian CNPJ", "01.234.456/5432-10", r"\d\d\.\d{3}\.\d{3}/\d{4}-\d\d"
        ),
    ),
    "CA": (TaxIdRule("ca_bn", "Canadian BN", "123456789", r"\d{9}"),),
    "CH": (
        TaxIdRule(
            "ch_vat", "Swiss VAT", "CHE-123.456.789 MWST", r"CHE-\d{3}\.\d{3}\.\d{3} (MWST|TVA|IVA)"
        ),
    ),
    "ES": (TaxIdRule("es_cif", "Spanish CIF", "A12345678", r"[A-Z]\d{7}[A-Z0-9]"),),
    "GB": (TaxIdRule("gb_vat", "UK VAT", "GB123456789", r"GB(\d{9}|\d{12})"),),
    "IN": (
        TaxIdRule(
            "in_gst", "Indian GST", "12ABCDE3456FGZH", r"\d\d[A-Z]{5}\d{4}[A-Z][A-Z0-9]Z[A-Z0-9]"
        ),
    ),
    "JP": (TaxIdRule("jp_cn", "Japanese Corporate Number", "1234567891234", r"\d{13}"),),
    "NO": (TaxIdRule("no_vat", "Norwegian VAT", "123456789MVA", r"\d{9}MVA"),),
    "NZ": (TaxIdRule("nz_gst", "New Zealand GST", "123456789", r"\d{8,9}"),),
    "SG": (
        TaxIdRule(
            "sg_uen", "Singaporean UEN", "123456789F", r"\d{8,9}[A-Z]|[TSR]\d\d[A-Z]{2}\d{4}[A-Z]"
        ),
    ),
    "US": (TaxIdRule("us_ein", "US EIN", "12-3456789", r"\d\d-\d{7}"),),
    "ZA": (TaxIdRule("za_vat", "South African VAT", "4123456789", r"4\d{9}"),),
}
_RULES: dict[str, tuple[TaxIdRule, ...]] = {
    country: (
        *((TaxIdRule("eu_vat", "EU VAT", *_EU_VAT[country]),) if country in _EU_VAT else ()),
        *_OTHER_RULES.get(country, ()),
    )
    for country in sorted({*_EU_VAT, *_OTHER_RULES})
}

# The longest each text may be (Stripe allows more; an invoice header has no room for it).
MAX_CHARS = {"name": 200, "line1": 200, "line2": 200, "city": 100, "postal_code": 20, "state": 100}
LABELS = {
    "name": N_("company name"),
    "line1": N_("address"),
    "line2": N_("second address line"),
    "city": N_("city"),
    "postal_code": N_("postal code"),
    "state": N_("state or region"),
}


def tax_id_rules(country: str) -> tuple[TaxIdRule, ...]:
    """The tax ID types a customer in `country` may give (none for a country not listed)."""
    return _RULES.get(country, ())


def normalize_tax_id(type_: str, value: str) -> str:
    """Upper case without spaces (a Swiss VAT number keeps the one before MWST/TVA/IVA)."""
    text = " ".join(value.split()).upper()
    return text if type_ == "ch_vat" else text.replace(" ", "")


def _text(form: Mapping[str, object], key: str) -> str:
    value = form.get(key)
    text = " ".join(value.split()) if isinstance(value, str) else ""
    label = _(LABELS[key])
    if any(unicodedata.category(char).startswith("C") for char in text):
        raise InvalidDetails(
            _("The %(field)s cannot contain control characters.") % {"field": label}
        )
    if len(text) > MAX_CHARS[key]:
        raise InvalidDetails(
            _("The %(field)s can have at most %(count)s characters.")
            % {"field": label, "count": MAX_CHARS[key]}
        )
    return text


def _tax_id(form: Mapping[str, object], country: str) -> tuple[str, str]:
    type_ = str(form.get("tax_id_type") or "")
    raw = form.get("tax_id_value")
    value = raw if isinstance(raw, str) else ""
    if not type_:
        if value.strip():
            raise InvalidDetails(_("Choose the type of your tax ID."))
        return "", ""
    rule = next((r for r in tax_id_rules(country) if r.type == type_), None)
    if rule is None:
        raise InvalidDetails(
            _("Choose a tax ID type used in %(country)s.") % {"country": country_name(country)}
        )
    normalized = normalize_tax_id(type_, value[:100])
    if not normalized:
        raise InvalidDetails(
            _("Enter your %(type)s number, or choose “No tax ID”.") % {"type": rule.label}
        )
    if re.fullmatch(rule.pattern, normalized) is None:
        raise InvalidDetails(
            _("Enter a valid %(type)s number, such as %(example)s.")
            % {"type": rule.label, "example": rule.example}
        )
    return type_, normalized


def parse_details(form: Mapping[str, object]) -> BillingDetails:
    """The form's values, checked and tidied (spaces collapsed); raise InvalidDetails otherwise."""
    name = _text(form, "name")
    if not name:
        raise InvalidDetails(_("Enter the company name."))
    country = str(form.get("country") or "")
    if not country:
        raise InvalidDetails(_("Choose a country."))
    if country not in COUNTRY_NAMES:
        raise InvalidDetails(_("Choose a country from the list."))
    try:
        email = normalize_email(form.get("email"))
    except InvalidEmail as exc:
        raise InvalidDetails(
            _("Enter one invoice email address, such as billing@example.com.")
        ) from exc
    tax_id_type, tax_id_value = _tax_id(form, country)
    return BillingDetails(
        name=name,
        email=email,
        line1=_text(form, "line1"),
        line2=_text(form, "line2"),
        city=_text(form, "city"),
        postal_code=_text(form, "postal_code"),
        state=_text(form, "state"),
        country=country,
        tax_id_type=tax_id_type,
        tax_id_value=tax_id_value,
    )


# The account's copy -----------------------------------------------------------------------

_COLUMNS = {f.name: f"billing_{f.name}" for f in fields(BillingDetails)}


def stored_details(account: Account) -> BillingDetails | None:
    """The details last saved from the page (None before the first save)."""
    if not account.billing_country:
        return None
    return BillingDetails(
        **{key: getattr(account, column) or "" for key, column in _COLUMNS.items()}
    )


def form_defaults(account: Account) -> BillingDetails:
    """What the form starts with: the saved details, else the account's name and admin email."""
    return stored_details(account) or BillingDetails(name=account.name, email=account.admin_email)


# Column sizes: the page's own rules keep within them, but a value typed in Stripe's Dashboard
# may be longer, and this copy is only what the page shows (the invoices print Stripe's).
_SIZES = {column: Account.__table__.c[column].type.length for column in _COLUMNS.values()}  # type: ignore[attr-defined]


def store_details(account: Account, details: BillingDetails) -> None:
    for key, column in _COLUMNS.items():
        setattr(account, column, getattr(details, key)[: _SIZES[column]] or None)


def brief(details: BillingDetails | None) -> str:
    """One line for the summary: company, city and country, tax ID."""
    if details is None:
        return ""
    place = ", ".join(p for p in (details.city, country_name(details.country)) if p)
    return " · ".join(p for p in (details.name, place, details.tax_id_value) if p)
