"""The reconcile pass (`billing-admin reconcile`, and every webhook's re-sync) on the emulator,
through the real-Stripe code path: local rows follow Stripe, each repair is audited, nothing is
charged, and users exceeding the licenses stop new activations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from billing_app import cli
from billing_app.api import licenses
from billing_app.api.routes import build_api
from billing_app.db import session_scope
from billing_app.models import Account, AuditLog
from billing_app.services import gateway, seats
from billing_app.services.accounts import issue_api_key
from billing_app.services.activity import activity_page
from billing_app.services.billing_actions import BillingService
from billing_app.services.reconcile import reconcile
from billing_app.services.summary import build_summary
from billing_app.settings import TEST_MODE_SECRET_KEY, get_settings
from tests.integration.flows import account, new_account, subscribed_account

OPERATOR = "billing-admin"


@pytest.fixture
def cli_stripe(monkeypatch) -> Iterator[Any]:
    """Point `billing-admin` (which builds its Stripe client from the environment) at a port:
    `cli_stripe(port)`."""

    def use(port: int) -> None:
        monkeypatch.setenv("LOCALSTRIPE_PORT", str(port))
        _forget_settings()

    yield use
    _forget_settings()  # the environment is restored next; the next read sees it


def _forget_settings() -> None:
    get_settings.cache_clear()
    gateway.get_gateway.cache_clear()
    gateway.get_billing_service.cache_clear()


def billing_admin(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    try:
        cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def invoices_at_stripe(emulator, account_id: int) -> list[str]:
    customer = account(account_id).stripe_customer_id
    body = emulator.get(f"/v1/invoices?customer={customer}&limit=100").json()
    return sorted(invoice["id"] for invoice in body["data"])


def corrupt_local_licenses(account_id: int, licenses: int) -> None:
    with session_scope() as session:
        stored = session.get_one(Account, account_id)
        stored.licenses_purchased = licenses
        session.add(stored)


def lower_quantity_at_stripe(service: BillingService, account_id: int, quantity: int) -> None:
    """Support lowers the quantity in the Dashboard: no proration, no invoice, no webhook yet."""
    subscription = service.gateway.retrieve_subscription(
        str(account(account_id).stripe_subscription_id)
    )
    service.gateway._v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": subscription.item_id, "quantity": quantity}],
            "proration_behavior": "none",
        },
        options={"api_key": TEST_MODE_SECRET_KEY},
    )


def audit_log(account_id: int) -> list[tuple[str, str, str]]:
    with session_scope() as session:
        entries = session.exec(
            select(AuditLog).where(AuditLog.account_id == account_id).order_by(AuditLog.id)
        )
        return [(entry.actor, entry.action, entry.outcome) for entry in entries]


def operator_rows(account_id: int) -> list[str]:
    with session_scope() as session:
        rows = activity_page(session, account_id).rows
    return [row.what for row in reversed(rows) if row.who == "Operator"]


def test_reconcile_repairs_a_drifted_local_count_and_audits_it(service, emulator):
    account_id = subscribed_account(service, emulator, licenses=3)
    corrupt_local_licenses(account_id, 7)
    invoices = invoices_at_stripe(emulator, account_id)

    result = reconcile(service, account_id, actor=OPERATOR)

    assert result.repairs == ["Subscription changed at Stripe: 3 licenses, billed monthly (was 7)"]
    assert account(account_id).licenses_purchased == 3
    assert operator_rows(account_id) == [
        "Subscription changed at Stripe: 3 licenses, billed monthly (was 7)"
    ]
    assert invoices_at_stripe(emulator, account_id) == invoices  # nothing invoiced or charged
    # A second pass finds nothing to repair and writes nothing.
    entries = audit_log(account_id)
    assert reconcile(service, account_id, actor=OPERATOR).lines() == [
        "in step with Stripe (0 users, 3 licenses)"
    ]
    assert audit_log(account_id) == entries


def test_billing_admin_reconcile_after_a_lower_quantity_at_stripe_stops_new_users(
    service, emulator, capsys, cli_stripe
):
    account_id = subscribed_account(service, emulator, licenses=3)
    stored = account(account_id)
    domain = stored.admin_email.split("@")[1]
    with session_scope() as session:
        for name in ("ann", "bob", "cy"):
            assert seats.activate(session, account_id, f"{name}@{domain}", actor="test").licensed
        key = issue_api_key(session, session.get_one(Account, account_id), actor="test")
    lower_quantity_at_stripe(service, account_id, 1)
    invoices = invoices_at_stripe(emulator, account_id)
    cli_stripe(emulator.port)

    code, out, err = billing_admin(capsys, "reconcile", stored.slug)

    assert (code, err) == (0, "")
    repaired = "repaired: Subscription changed at Stripe: 1 license, billed monthly (was 3)"
    notice = (
        "3 users are active but only 1 license is purchased: remove users in User Management or "
        "purchase more."
    )
    assert out.splitlines() == [f"{stored.slug}: {repaired}", f"{stored.slug}: {notice}"]
    assert account(account_id).licenses_purchased == 1
    assert invoices_at_stripe(emulator, account_id) == invoices
    assert operator_rows(account_id) == [
        "Subscription changed at Stripe: 1 license, billed monthly (was 3)",
        "3 users are active but only 1 license is purchased: new users are refused until resolved",
    ]
    with session_scope() as session:
        summary = build_summary(session, session.get_one(Account, account_id))
    assert summary.over_licensed_notice == notice  # the Plan tab's banner
    # The connector: nobody new, everyone already active keeps working.
    with TestClient(
        build_api(licenses.routes), base_url="http://testserver/api/v1/licenses"
    ) as api:
        auth = {"Authorization": f"Bearer {key}"}
        refused = api.post("/activate", json={"email": f"dee@{domain}"}, headers=auth)
        assert (refused.status_code, refused.json()["error"]) == (409, "users_exceed_licenses")
        assert api.get("/check", params={"email": f"bob@{domain}"}, headers=auth).json() == {
            "licensed": True,
            "plan": "unlimited",
        }
        again = api.post("/activate", json={"email": f"ann@{domain}"}, headers=auth)
        assert (again.status_code, again.json()["already_active"]) == (200, True)


def test_billing_admin_reconcile_of_every_subscribed_account(service, emulator, capsys, cli_stripe):
    drifted, in_step = (subscribed_account(service, emulator, licenses=2) for _ in range(2))
    corrupt_local_licenses(drifted, 5)
    cli_stripe(emulator.port)

    code, out, err = billing_admin(capsys, "reconcile")

    # Every account of the run's database is reconciled: other suites' accounts live on emulators
    # of their own, stopped by now, so Stripe is unreachable for them (and the exit code says so);
    # this test's accounts must not be among the failures.
    failed = [line.split(":", 1)[0] for line in err.splitlines() if "Stripe error" in line]
    assert code == (1 if failed else 0), out + err
    assert not {account(drifted).slug, account(in_step).slug} & set(failed)
    assert (
        f"{account(drifted).slug}: repaired: Subscription changed at Stripe: 2 licenses, billed "
        "monthly (was 5)"
    ) in out.splitlines()
    assert f"{account(in_step).slug}: in step with Stripe (0 users, 2 licenses)" in out.splitlines()
    assert account(drifted).licenses_purchased == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("reconcile", "no-such-account"), "billing-admin: error: No account 'no-such-account'.\n"),
        (("reconcile", "a", "b"), "unrecognized arguments: b"),
    ],
)
def test_billing_admin_reconcile_refuses_bad_input_and_changes_nothing(
    app_database, capsys, cli_stripe, emulator, args, message
):
    cli_stripe(emulator.port)
    with session_scope() as session:
        entries = len(list(session.exec(select(AuditLog.id))))
    code, _out, err = billing_admin(capsys, *args)
    assert code != 0 and message in err
    with session_scope() as session:
        assert len(list(session.exec(select(AuditLog.id)))) == entries


def test_billing_admin_reconcile_of_a_free_account_says_there_is_nothing_to_compare(
    service, emulator, capsys, cli_stripe
):
    slug = account(new_account()).slug
    cli_stripe(emulator.port)
    assert billing_admin(capsys, "reconcile", slug) == (
        1,
        "",
        f"billing-admin: error: {slug} has no Stripe subscription: nothing to reconcile.\n",
    )


def test_stripe_unreachable_changes_nothing_and_exits_non_zero(
    service, emulator, capsys, cli_stripe, closed_port
):
    account_id = subscribed_account(service, emulator, licenses=2)
    corrupt_local_licenses(account_id, 4)
    entries = audit_log(account_id)
    cli_stripe(closed_port)

    code, _out, err = billing_admin(capsys, "reconcile", account(account_id).slug)

    assert code == 1
    assert f"{account(account_id).slug}: Stripe error, nothing changed:" in err
    assert "billing-admin: error: not reconciled: " in err
    assert account(account_id).licenses_purchased == 4
    assert audit_log(account_id) == entries
