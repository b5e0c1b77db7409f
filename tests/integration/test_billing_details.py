"""Billing Details through the real-Stripe code path on the emulator: saved on the Stripe customer
(name, email, address, tax ID through the customer tax ID endpoints), copied for the page, printed
on the invoices issued after, never on those issued before."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from pypdf import PdfReader
from sqlmodel import col, select

from billing_app.db import session_scope
from billing_app.errors import UserError
from billing_app.models import AuditLog
from billing_app.services.audit import AuditAction
from billing_app.services.billing_actions import BillingService
from billing_app.services.invoices import history_page, render_account_invoice
from billing_app.services.webhooks import ACTOR as WEBHOOK
from billing_app.services.webhooks import handle_delivery
from billing_app.stripe.client import MSG_TAX_ID_REFUSED, StripeClient
from billing_app.stripe.errors import MSG_UNREACHABLE, GatewayError
from billing_app.stripe.snapshots import BillingDetails
from tests.integration.flows import ACTOR, account, new_account, subscribed_account
from tests.integration.test_billing_flows import signed

BERLIN = {
    "name": "Acme GmbH",
    "email": "billing@acme.test",
    "line1": "Friedrichstraße 1",
    "line2": "3. OG",
    "city": "Berlin",
    "postal_code": "10117",
    "state": "",
    "country": "DE",
    "tax_id_type": "eu_vat",
    "tax_id_value": "DE 123 456 789",
}
LONDON = {
    "name": "Acme Ltd",
    "email": "accounts@acme.test",
    "line1": "1 Poultry",
    "line2": "",
    "city": "London",
    "postal_code": "EC2R 8EJ",
    "state": "",
    "country": "GB",
    "tax_id_type": "gb_vat",
    "tax_id_value": "GB123456789",
}


def save(service: BillingService, account_id: int, form: dict[str, Any], form_id: str = ""):
    return service.save_billing_details(
        account_id, form, form_id=form_id or uuid.uuid4().hex, actor=ACTOR
    )


def at_stripe(emulator, customer_id: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    customer = emulator.get(f"/v1/customers/{customer_id}").json()
    tax_ids = emulator.get(f"/v1/customers/{customer_id}/tax_ids").json()["data"]
    return customer, [(t["type"], t["value"]) for t in tax_ids]


def audit_entries(account_id: int, action: AuditAction) -> list[AuditLog]:
    with session_scope() as session:
        return list(
            session.exec(
                select(AuditLog)
                .where(AuditLog.account_id == account_id, AuditLog.action == action)
                .order_by(col(AuditLog.id))
            )
        )


def pdf_text(service: BillingService, account_id: int, invoice_id: str) -> str:
    rendered = render_account_invoice(
        service.gateway, service.settings, account_id, invoice_id, actor=ACTOR
    )
    pages = PdfReader(io.BytesIO(rendered.content)).pages
    return " ".join(" ".join(page.extract_text().split()) for page in pages)


def test_details_are_saved_on_the_stripe_customer_and_copied(service, emulator):
    account_id = new_account()  # free: no Stripe customer yet
    result = save(service, account_id, BERLIN)
    assert result.message == "Billing details saved. New invoices will show them."
    stored = account(account_id)
    assert stored.stripe_customer_id
    customer, tax_ids = at_stripe(emulator, stored.stripe_customer_id)
    assert (customer["name"], customer["email"]) == ("Acme GmbH", "billing@acme.test")
    assert customer["address"] == {
        "line1": "Friedrichstraße 1",
        "line2": "3. OG",
        "city": "Berlin",
        "postal_code": "10117",
        "state": "",
        "country": "DE",
    }
    assert tax_ids == [("eu_vat", "DE123456789")]
    assert (stored.billing_name, stored.billing_city, stored.billing_country) == (
        "Acme GmbH",
        "Berlin",
        "DE",
    )
    assert (stored.billing_tax_id_type, stored.billing_tax_id_value) == ("eu_vat", "DE123456789")
    # Every step with its actor: the customer made for the details, then the details.
    [created] = audit_entries(account_id, AuditAction.CREATE_CUSTOMER)
    [saved] = audit_entries(account_id, AuditAction.BILLING_DETAILS)
    assert (created.actor, saved.actor, saved.outcome) == (ACTOR, ACTOR, "ok")
    assert '"tax_id_type": "eu_vat"' in saved.detail and '"country"' in saved.detail

    # Moving to London: the old tax ID is replaced (tax IDs cannot be edited), line 2 unset.
    save(service, account_id, LONDON)
    customer, tax_ids = at_stripe(emulator, stored.stripe_customer_id)
    assert (customer["name"], customer["address"]["line2"], customer["address"]["country"]) == (
        "Acme Ltd",
        "",
        "GB",
    )
    assert tax_ids == [("gb_vat", "GB123456789")]
    assert account(account_id).billing_line2 is None
    # No tax ID at all: none left at Stripe.
    save(service, account_id, LONDON | {"tax_id_type": "", "tax_id_value": ""})
    assert at_stripe(emulator, stored.stripe_customer_id)[1] == []


def test_details_changed_in_stripes_dashboard_reach_the_page_with_the_next_re_sync(
    service, emulator
):
    account_id = subscribed_account(service, emulator, licenses=1)
    save(service, account_id, BERLIN)
    service.resync(account_id, actor=WEBHOOK)  # in step: nothing to say
    assert [e.actor for e in audit_entries(account_id, AuditAction.BILLING_DETAILS)] == [ACTOR]

    customer_id = str(account(account_id).stripe_customer_id)
    stripe = service.gateway._v1  # as support would, in the Dashboard
    address = {key: BERLIN[key] for key in ("line1", "line2", "postal_code", "country")}
    stripe.customers.update(
        customer_id,
        params={"name": "Acme Hamburg GmbH", "address": address | {"city": "Hamburg"}},
    )
    [tax_id] = stripe.customers.tax_ids.list(customer_id).data
    stripe.customers.tax_ids.delete(customer_id, tax_id.id)
    created = stripe.customers.tax_ids.create(
        customer_id, params={"type": "eu_vat", "value": "DE999999999"}
    )
    event = {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": "customer.tax_id.created",
        "data": {"object": created.to_dict()},
    }
    assert handle_delivery(service, *signed(service.settings, event)).outcome == "applied"

    stored = account(account_id)
    assert (stored.billing_name, stored.billing_city, stored.billing_line1) == (
        "Acme Hamburg GmbH",
        "Hamburg",
        "Friedrichstraße 1",
    )
    assert stored.billing_tax_id_value == "DE999999999"
    # What the form starts with next: Stripe's, so saving it does not undo the Dashboard's change.
    assert service.billing_details_form(account_id).name == "Acme Hamburg GmbH"
    assert [e.actor for e in audit_entries(account_id, AuditAction.BILLING_DETAILS)] == [
        ACTOR,
        WEBHOOK,
    ]


def test_the_same_form_sent_twice_is_saved_once(service, emulator):
    account_id = new_account()
    form_id = uuid.uuid4().hex
    save(service, account_id, BERLIN, form_id)
    again = save(service, account_id, BERLIN, form_id)  # a double click
    assert again.already_done
    assert len(audit_entries(account_id, AuditAction.BILLING_DETAILS)) == 1
    customer_id = str(account(account_id).stripe_customer_id)
    assert at_stripe(emulator, customer_id)[1] == [("eu_vat", "DE123456789")]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tax_id_value": "DE12"}, "Enter a valid EU VAT number, such as DE123456789."),
        ({"tax_id_type": "us_ein"}, "Choose a tax ID type used in Germany."),
        ({"country": ""}, "Choose a country."),
        ({"name": "x" * 201}, "The company name can have at most 200 characters."),
        ({"email": "billing@"}, "Enter one invoice email address, such as billing@example.com."),
    ],
)
def test_bad_input_changes_nothing_at_stripe_or_here(service, emulator, changes, message):
    fresh = new_account()
    with pytest.raises(UserError, match=message):
        save(service, fresh, BERLIN | changes)
    assert account(fresh).stripe_customer_id is None  # not even a customer was made

    saved = new_account()
    save(service, saved, LONDON)
    customer_id = str(account(saved).stripe_customer_id)
    before = at_stripe(emulator, customer_id)
    with pytest.raises(UserError, match=message):
        save(service, saved, BERLIN | changes)
    assert at_stripe(emulator, customer_id) == before
    stored = account(saved)
    assert (stored.billing_name, stored.billing_country, stored.billing_tax_id_value) == (
        "Acme Ltd",
        "GB",
        "GB123456789",
    )
    refused = audit_entries(saved, AuditAction.BILLING_DETAILS)[-1]
    assert (refused.outcome, refused.actor) == ("error", ACTOR) and message in refused.detail


def test_a_tax_id_stripe_refuses_changes_nothing_at_stripe(service, emulator):
    account_id = new_account()
    save(service, account_id, LONDON)
    customer_id = str(account(account_id).stripe_customer_id)
    before = at_stripe(emulator, customer_id)
    refused = BillingDetails(
        name="Other Ltd", email="o@other.test", country="GB", tax_id_type="gb_vat", tax_id_value="X"
    )
    with pytest.raises(GatewayError) as raised:
        service.gateway.save_billing_details(customer_id, refused, idempotency_key=uuid.uuid4().hex)
    assert (raised.value.code, raised.value.message) == ("tax_id_invalid", MSG_TAX_ID_REFUSED)
    assert at_stripe(emulator, customer_id) == before


def test_stripe_unreachable_keeps_the_copy_and_a_retry_saves(
    service, settings_for, closed_port, settings, emulator
):
    account_id = new_account()
    save(service, account_id, LONDON)
    offline_settings = settings_for(closed_port, settings.billing_data_dir)
    offline = BillingService(StripeClient(offline_settings), offline_settings)
    form_id = uuid.uuid4().hex
    with pytest.raises(UserError, match=MSG_UNREACHABLE):
        save(offline, account_id, BERLIN, form_id)
    assert account(account_id).billing_country == "GB"
    save(service, account_id, BERLIN, form_id)  # the same form, sent again
    assert account(account_id).billing_country == "DE"
    customer_id = str(account(account_id).stripe_customer_id)
    assert at_stripe(emulator, customer_id)[1] == [("eu_vat", "DE123456789")]


def add_license(service: BillingService, account_id: int, licenses_now: int) -> None:
    preview = service.preview_additional_licenses(account_id, 1)
    service.add_licenses(
        account_id,
        1,
        expected_licenses=licenses_now,
        proration_date=preview.proration_date,
        actor=ACTOR,
    )


def test_invoices_show_the_details_true_when_they_were_issued(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=2)
    [first] = history_page(service.gateway, account_id, actor=ACTOR).rows
    before_details = pdf_text(service, account_id, first.id)
    assert "Acme GmbH" not in before_details and "DE123456789" not in before_details

    save(service, account_id, BERLIN)
    add_license(service, account_id, 2)
    second = history_page(service.gateway, account_id, actor=ACTOR).rows[0]
    berlin_pdf = pdf_text(service, account_id, second.id)
    assert (
        "BILL TO Acme GmbH billing@acme.test Friedrichstraße 1 3. OG 10117 Berlin DE "
        "Tax ID: DE123456789"
    ) in berlin_pdf
    # The seller block comes from the settings.
    assert "iEnterprise Inc. 100 Market Street" in berlin_pdf

    save(service, account_id, LONDON)
    add_license(service, account_id, 3)
    rows = history_page(service.gateway, account_id, actor=ACTOR).rows
    assert [row.id for row in rows[1:]] == [second.id, first.id]
    london_pdf = pdf_text(service, account_id, rows[0].id)
    assert "Acme Ltd accounts@acme.test 1 Poultry EC2R 8EJ London GB" in london_pdf
    assert "Tax ID: GB123456789" in london_pdf and "Berlin" not in london_pdf
    # Issued invoices never change.
    assert pdf_text(service, account_id, second.id) == berlin_pdf
    assert pdf_text(service, account_id, first.id) == before_details
