"""Translations and locale formats: English (the source texts, the msgids) and German.

The locale of the work at hand is a context variable: the page's session guard sets it for each
event of a tab (states/session_guard.py), the invoice PDF route for each request;
`asyncio.to_thread` copies it into the thread. Texts live in gettext catalogues under
billing_app/locale (README: "Translations"); `make setup` compiles them.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from pathlib import Path

from babel.dates import format_date as _babel_date
from babel.numbers import format_decimal

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "de")
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

_current: ContextVar[str] = ContextVar("billing_locale", default=DEFAULT_LOCALE)


def supported_locale(value: object) -> str | None:
    """ "de", "de-AT" or "de_CH" → "de"; None for what the page is not translated into."""
    if not isinstance(value, str):
        return None
    language = value.strip().replace("_", "-").split("-")[0].lower()
    return language if language in SUPPORTED_LOCALES else None


def negotiate(accept_language: str | None) -> str:
    """The browser's first supported language (Accept-Language, by q-value), else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "")[:1000].split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        locale = supported_locale(tag)
        if locale and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


def get_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    _current.set(supported_locale(locale) or DEFAULT_LOCALE)


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = _current.set(supported_locale(locale) or DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    if locale == DEFAULT_LOCALE:
        return _gettext.NullTranslations()
    # No silent fallback to English: a missing compiled catalogue is a broken build.
    try:
        return _gettext.translation(DOMAIN, LOCALE_DIR, [locale])
    except FileNotFoundError as exc:
        raise RuntimeError(f"No compiled {locale} catalogue: run `make setup`") from exc


def translate(locale: str, message: str) -> str:
    return translations(locale).gettext(message)


def gettext(message: str) -> str:
    """`message` in the current locale; with values: `_("Added %(count)s") % {"count": 2}`."""
    return translate(get_locale(), message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for `count`, by the current locale's plural rule."""
    return translations(get_locale()).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Marks a text for the catalogue where it is defined; it is translated (`_()`) where shown."""
    return message


_ = gettext


def format_date(value: datetime | None, locale: str | None = None) -> str:
    """ "Mar 4, 2026" in English, "04.03.2026" in German; "" for no date."""
    return _babel_date(value, "medium", locale=locale or get_locale()) if value else ""


def format_number(value: int, locale: str | None = None) -> str:
    """ "1,234" in English, "1.234" in German."""
    return format_decimal(value, locale=locale or get_locale())
