"""The page in English and German: the launch link's language, else the browser's, else English;
amounts, dates and the invoice PDF in it; the Activity tab's times in the browser's time zone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.helpers import pdf_text, save_pdf_and_png

pytestmark = pytest.mark.e2e

# Babel's German currency format: the amount, a no-break space, the symbol.
GERMAN_AMOUNT = re.compile(r"80,00\s\$ am \d{2}\.\d{2}\.\d{4}")
TABS = {
    "en": ("Plan", "Billing History", "User Management", "Activity"),
    "de": ("Tarif", "Rechnungen", "Benutzer", "Aktivität"),
}


def _open(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def test_a_german_launch_link_shows_the_page_in_german(page: Page, launch):
    _open(page, launch("demo", locale="de"))
    expect(page.locator("html")).to_have_attribute("lang", "de")
    card = page.locator("#summary-card")
    expect(card.get_by_role("heading", name="Abonnement")).to_be_visible()
    expect(card).to_contain_text("Monatlich")
    expect(card).to_contain_text(GERMAN_AMOUNT)
    expect(card).to_contain_text("Visa mit Endziffern 4242")
    expect(page.locator("#licenses-summary")).to_have_text("3 von 10 Lizenzen genutzt")
    for name in TABS["de"]:
        expect(page.get_by_role("tab", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Zusätzliche Lizenz kaufen")).to_be_visible()
    # The tab keeps its language over a reload (the launch link is gone from the address bar).
    page.reload()
    expect(page.locator("#licenses-summary")).to_have_text("3 von 10 Lizenzen genutzt")
    expect(page.locator("html")).to_have_attribute("lang", "de")


def test_a_german_browser_gets_german_without_a_language_in_the_link(browser: Browser, launch):
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    _open(page, launch("demo"))
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#licenses-summary")).to_have_text("3 von 10 Lizenzen genutzt")
    context.close()


def test_the_link_language_wins_over_the_browser(browser: Browser, launch):
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    _open(page, launch("demo", locale="en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#licenses-summary")).to_have_text("3 of 10 licenses used")
    context.close()


def test_english_by_default(page: Page, launch):
    _open(page, launch("demo"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#summary-card")).to_contain_text("$80.00 on ")


def test_a_german_error_and_the_denied_page(browser: Browser, launch):
    context = browser.new_context(locale="de")
    page = context.new_page()
    page.goto(launch("demo").replace("launch=", "launch=x"))
    expect(page.get_by_role("alert")).to_contain_text(
        "Öffnen Sie die Abrechnungsseite über das $-Symbol im Connector."
    )
    context.close()


def test_the_german_invoice_pdf(page: Page, launch, artifacts):
    _open(page, launch("demo", locale="de"))
    page.get_by_role("tab", name="Rechnungen").click()
    row = page.locator(".invoice-row").first
    expect(row).to_contain_text("Bezahlt")
    expect(row).to_contain_text("80,00")
    with page.expect_download() as download:
        row.get_by_role("button", name="Herunterladen", exact=True).click()
    with open(download.value.path(), "rb") as saved:
        content = saved.read()
    text = pdf_text(content)
    for expected in ("RECHNUNG", "RECHNUNG AN", "Rechnungsnummer", "Gesamt 80,00", "BEZAHLT"):
        assert expected in text
    assert "Seite 1 von 1" in text and "Alle Beträge in USD." in text
    save_pdf_and_png(content, artifacts / "invoice-demo-de.pdf")


def test_activity_times_in_the_browser_time_zone(browser: Browser, launch, seat_account):
    slug, _domain, _key = seat_account(licenses=10, users=2)
    context = browser.new_context(locale="de-DE", timezone_id="Asia/Kolkata")
    page = context.new_page()
    _open(page, launch(slug))
    page.get_by_role("tab", name="Aktivität", exact=True).click()
    first = page.locator(".activity-row").first
    expect(first).to_be_visible()
    instant = first.locator("time").get_attribute("datetime")
    assert instant is not None and instant.endswith("+00:00")
    # India is UTC+5:30 all year: the browser writes the entry in its own zone, in German.
    shown = first.locator("time").inner_text()  # e.g. "3. Dez. 2026, 12:43 GMT+5:30"
    written = re.fullmatch(r"\d{1,2}\. \w+\.? \d{4}, (\d{2}):(\d{2}) GMT\+5:30", shown)
    assert written, shown
    utc_minutes = int(instant[11:13]) * 60 + int(instant[14:16])
    local_minutes = int(written[1]) * 60 + int(written[2])
    assert (local_minutes - utc_minutes) % (24 * 60) == 5 * 60 + 30
    context.close()


@pytest.mark.parametrize("width", [320, 360, 1280])
@pytest.mark.parametrize("locale", ["en", "de"])
def test_every_tab_fits_the_sidebar(browser: Browser, launch, artifacts, width, locale):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    _open(page, launch("demo", locale=locale))
    expect(page.locator("#summary-card")).to_be_visible()
    page.screenshot(path=artifacts / f"page-{locale}-{width}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    tab_list = page.get_by_role("tablist").bounding_box()
    assert tab_list is not None
    for name in TABS[locale]:
        tab = page.get_by_role("tab", name=name, exact=True).bounding_box()
        assert tab is not None, name
        assert (
            tab_list["x"] - 0.5
            <= tab["x"]
            <= tab_list["x"] + tab_list["width"] - tab["width"] + 0.5
        )
    # No button label runs out of its button.
    overflowing = page.evaluate(
        "[...document.querySelectorAll('button, [role=tab]')]"
        ".filter(b => b.offsetParent && b.scrollWidth > b.clientWidth + 1).map(b => b.innerText)"
    )
    assert overflowing == []
    context.close()


def test_german_tabs_and_dialog_fit_the_narrowest_sidebar(browser: Browser, launch, artifacts):
    context = browser.new_context(viewport={"width": 320, "height": 900})
    page = context.new_page()
    _open(page, launch("demo", locale="de"))
    for tab, shown in (("Benutzer", ".user-row"), ("Aktivität", ".activity-row")):
        page.get_by_role("tab", name=tab, exact=True).click()
        expect(page.locator(shown).first).to_be_visible()
        page.screenshot(path=artifacts / f"tab-{shown[1:]}-de-320.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.get_by_role("tab", name="Tarif", exact=True).click()
    page.get_by_role("button", name="Zusätzliche Lizenz kaufen").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Kaufformular")).to_be_visible()
    expect(dialog.locator("#license-preview")).to_contain_text(
        re.compile(r"\d+,\d{2}\s\$ pro Monat")
    )
    page.screenshot(path=artifacts / "purchase-form-de-320.png")
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
    context.close()


def test_the_free_page_and_how_to_purchase_in_german(browser: Browser, launch, artifacts):
    context = browser.new_context(viewport={"width": 360, "height": 780})
    page = context.new_page()
    page.goto(launch("free-demo", locale="de"))
    card = page.locator("#free-plan-card")
    expect(card.get_by_role("heading", name="Kostenlose Version", exact=True)).to_be_visible()
    expect(page.locator("#unlimited-prices")).to_contain_text(
        re.compile(r"Pro Lizenz und Monat\s*8,00\s\$")
    )
    page.get_by_role("button", name="So kaufen Sie die Unlimited Version").click()
    steps = page.get_by_role("dialog", name="So kaufen Sie die Unlimited Version").locator(
        "ol > li"
    )
    expect(steps.first).to_have_text("Klicken Sie im Tab „Tarif“ auf „Unlimited Version kaufen“.")
    expect(steps).to_have_count(7)
    page.wait_for_timeout(400)  # the dialog's fade-in
    page.screenshot(path=artifacts / "free-page-help-de-360.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()


def test_billing_details_in_german(browser: Browser, launch, make_account, artifacts):
    context = browser.new_context(viewport={"width": 360, "height": 780})
    page = context.new_page()
    page.goto(launch(make_account(), locale="de"))
    expect(page.locator("#billing-details-summary")).to_have_text("Nicht angegeben")
    page.get_by_role("button", name="Rechnungsdaten").click()
    dialog = page.get_by_role("dialog", name="Rechnungsdaten")
    country = dialog.get_by_label("Land", exact=True)
    # Babel's German names, in a German reader's order.
    expect(country.locator("option[value=AT]")).to_have_text("Österreich")
    dialog.get_by_label("Firmenname").fill("Acme GmbH")
    dialog.get_by_label("Ort").fill("Wien")
    country.select_option("AT")
    dialog.get_by_label("E-Mail für Rechnungen").fill("billing@acme.test")
    dialog.get_by_label("Art der Steuernummer").select_option("eu_vat")
    dialog.get_by_label("Steuernummer", exact=True).fill("AT12")
    dialog.get_by_role("button", name="Speichern").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "Geben Sie eine gültige Nummer vom Typ EU VAT ein, z. B. ATU12345678."
    )
    page.wait_for_timeout(400)
    page.screenshot(path=artifacts / "billing-details-de-360.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    dialog.get_by_label("Steuernummer", exact=True).fill("ATU12345678")
    dialog.get_by_role("button", name="Speichern").click()
    expect(dialog).to_have_count(0)
    expect(page.locator("#billing-details-summary")).to_have_text(
        "Acme GmbH · Wien, Österreich · ATU12345678"
    )
    context.close()
