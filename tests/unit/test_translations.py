"""The catalogues: every text of the code is in German, and the language choice and formats."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from billing_app.i18n import (
    LOCALE_DIR,
    SUPPORTED_LOCALES,
    _,
    format_date,
    negotiate,
    ngettext,
    supported_locale,
    translate,
    use_locale,
)
from billing_app.models import AuditLog
from billing_app.services.activity import display_row
from billing_app.services.billing_details import InvalidDetails, brief, parse_details
from billing_app.services.countries import COUNTRIES, countries, country_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _code_messages() -> set[str | tuple[str, ...]]:
    """What `make messages` extracts (babel.cfg; `t` is the components' keyword)."""
    with open(PROJECT_ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = extract_from_dir(
        str(PROJECT_ROOT), method_map, options_map, keywords={**DEFAULT_KEYWORDS, "t": None}
    )
    return {message for _file, _line, message, _comments, _context in found}


def _catalogue(locale: str):
    with open(LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=locale)


@pytest.mark.parametrize("locale", [locale for locale in SUPPORTED_LOCALES if locale != "en"])
def test_every_text_of_the_code_is_translated(locale):
    """A new or changed text fails here until `make messages` and its translation are done."""
    catalogue = _catalogue(locale)
    missing = []
    for message in _code_messages():
        entry = catalogue.get(message if isinstance(message, str) else message[0])
        strings = (entry.string,) if entry and isinstance(entry.string, str) else ()
        if entry and isinstance(entry.string, tuple):
            strings = entry.string
        if entry is None or entry.fuzzy or not all(strings):
            missing.append(message)
    assert missing == [], f"not translated into {locale}: {missing} (README: Translations)"


@pytest.mark.parametrize("locale", [locale for locale in SUPPORTED_LOCALES if locale != "en"])
def test_translations_keep_every_placeholder(locale):
    for entry in _catalogue(locale):
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == wanted, (entry.id, string)


def test_the_compiled_catalogue_is_the_current_one():
    """`make setup` compiles the catalogues; a stale .mo would show yesterday's German."""
    po = LOCALE_DIR / "de" / "LC_MESSAGES" / "messages.po"
    assert po.with_suffix(".mo").stat().st_mtime >= po.stat().st_mtime
    assert translate("de", "Purchase Additional License") == "Zusätzliche Lizenz kaufen"


def test_english_is_the_source_text():
    assert translate("en", "Purchase Additional License") == "Purchase Additional License"
    with use_locale("de"):
        assert _("Plan") == "Tarif"
        assert ngettext("%(count)s license", "%(count)s licenses", 1) == "%(count)s Lizenz"
        assert ngettext("%(count)s license", "%(count)s licenses", 2) == "%(count)s Lizenzen"
    assert _("Plan") == "Plan"


@pytest.mark.parametrize(
    "header, locale",
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-US,en;q=0.9,de;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,de;q=0.5", "de"),
        ("fr-FR, de;q=0", "en"),
        ("de;q=0.2, en;q=0.7", "en"),
        ("de-AT", "de"),
        ("", "en"),
        (None, "en"),
        ("q=;;,,de;q=abc", "en"),
    ],
)
def test_the_browser_language(header, locale):
    assert negotiate(header) == locale


def test_only_supported_languages():
    assert [supported_locale(v) for v in ("de_CH", "DE", "en-GB", "fr", "", None, 3)] == [
        "de",
        "de",
        "en",
        None,
        None,
        None,
        None,
    ]


def test_dates_in_each_language():
    day = datetime(2026, 3, 4, 9, 5)
    assert format_date(day, "en") == "Mar 4, 2026"
    assert format_date(day, "de") == "04.03.2026"
    assert format_date(None) == ""


def test_activity_rows_in_german():
    entry = AuditLog(
        id=1,
        at=datetime(2026, 3, 4, 9, 5),
        account_id=1,
        actor="billing-admin",
        action="billing.add_licenses",
        outcome="ok",
        detail='{"licenses": 2, "charged_cents": 5333, "currency": "usd"}',
    )
    with use_locale("de"):
        row = display_row(entry)
    assert (row.what, row.who, row.outcome) == (
        "2 Lizenzen hinzugefügt — 53,33\xa0$ belastet",
        "Betreiber",
        "Erledigt",
    )


def test_stripe_changes_in_the_activity_tab_in_german():
    entry = AuditLog(
        id=2,
        at=datetime(2026, 3, 4, 9, 5),
        account_id=1,
        actor="stripe-webhook",
        action="stripe.subscription_changed",
        outcome="ok",
        detail='{"licenses": 3, "interval": "year"}',
    )
    with use_locale("de"):
        row = display_row(entry)
    assert (row.what, row.who) == (
        "Abonnement bei Stripe geändert: 3 Lizenzen, jährliche Abrechnung",
        "Stripe",
    )


def test_countries_in_german_from_cldr_sorted_for_a_german_reader():
    german = countries("de")
    assert len(german) == len(COUNTRIES)
    names = [name for _code, name in german]
    assert names.index("Oman") < names.index("Österreich") < names.index("Pakistan")
    assert dict(german)["GB"] == "Vereinigtes Königreich"
    with use_locale("de"):
        assert country_name("DE") == "Deutschland"
    assert country_name("DE") == "Germany" and country_name("XX") == ""


def test_billing_details_refusals_and_summary_line_in_german():
    form = {"name": "Acme GmbH", "email": "billing@acme.test", "city": "Wien", "country": "AT"}
    with use_locale("de"):
        with pytest.raises(InvalidDetails) as refused:
            parse_details(form | {"postal_code": "1" * 21})
        assert (
            refused.value.message == "Das Feld „Postleitzahl“ darf höchstens 20 Zeichen enthalten."
        )
        with pytest.raises(InvalidDetails) as refused:
            parse_details(form | {"tax_id_type": "gb_vat", "tax_id_value": "GB123456789"})
        assert refused.value.message == (
            "Wählen Sie eine Steuernummernart, die in Österreich verwendet wird."
        )
        assert brief(parse_details(form)) == "Acme GmbH · Wien, Österreich"
