"""`t("Plan")`: a text of the page in the tab's language.

Reflex compiles the components once into a static frontend, while the language is per tab
(`PageState.locale`): `t()` takes every translation from the compiled catalogues at build time
and lets the browser pick one. Values go into named placeholders, `t("Remove %(email)s",
email=var)`: a str, a Var, or a function of the locale (e.g. a price formatted for it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import reduce
from typing import Any

import reflex as rx

from billing_app.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES, translate
from billing_app.states.page import PageState

Value = str | rx.Var | Callable[[str], str]
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _fill(template: str, values: dict[str, Value], locale: str) -> str | rx.Var:
    parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, …, literal
    pieces: list[str | rx.Var] = []
    for index, part in enumerate(parts):
        value = part if index % 2 == 0 else values[part]
        pieces.append(value(locale) if callable(value) else value)
    if all(isinstance(piece, str) for piece in pieces):
        return "".join(str(piece) for piece in pieces)
    return reduce(
        lambda left, right: left + right,
        [rx.Var.create(piece).to(str) for piece in pieces if not isinstance(piece, str) or piece],
    )


def t(message: str, **values: Value) -> str | rx.Var:
    """`message` (the English text, the catalogue's msgid) in the tab's language."""
    if not values:
        return localized(lambda locale: translate(locale, message))
    return localized(lambda locale: _fill(translate(locale, message), values, locale))


def localized(text: Callable[[str], str | rx.Var]) -> str | rx.Var:
    """`text(locale)` for each language, the tab's shown (e.g. a price formatted for it)."""
    return _by_locale({locale: text(locale) for locale in SUPPORTED_LOCALES})


def localized_component(build: Callable[[str], rx.Component]) -> rx.Component:
    """`build(locale)` for each language, the tab's shown (e.g. a list sorted in its order)."""
    return _by_locale({locale: build(locale) for locale in SUPPORTED_LOCALES})


def _by_locale(variants: dict[str, Any]) -> Any:
    english = variants.pop(DEFAULT_LOCALE)
    return reduce(
        lambda otherwise, locale: rx.cond(PageState.locale == locale, variants[locale], otherwise),
        variants,
        english,
    )
