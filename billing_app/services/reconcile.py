"""`billing-admin reconcile`: the reconcile pass over one account or every account with a Stripe
subscription.

The pass itself is `BillingService.resync`, which every webhook runs too: it repairs the local rows
from Stripe (never the other way), never charges, never removes a user, and audits each repair as
done by its actor. This module picks the accounts and says what the pass did.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from billing_app.db import session_scope
from billing_app.errors import ErrorCode
from billing_app.i18n import ngettext
from billing_app.models import Account
from billing_app.services.accounts import AccountError, get_account, licenses_used
from billing_app.services.activity import describe
from billing_app.services.audit import AuditAction
from billing_app.services.billing_actions import BillingService
from billing_app.services.seats import over_licensed_notice


@dataclass(frozen=True)
class Reconciliation:
    slug: str
    repairs: list[str]  # each repaired difference, in the Activity tab's words
    licenses_used: int
    licenses_purchased: int
    over_licensed_notice: str  # "" while the users fit the licenses

    def lines(self) -> list[str]:
        """What the operator is told, one line each."""
        used, purchased = self.licenses_used, self.licenses_purchased
        seats = ", ".join(
            (
                ngettext("%(count)s user", "%(count)s users", used) % {"count": used},
                ngettext("%(count)s license", "%(count)s licenses", purchased)
                % {"count": purchased},
            )
        )
        done = [f"repaired: {repair}" for repair in self.repairs]
        return (done or [f"in step with Stripe ({seats})"]) + (
            [self.over_licensed_notice] if self.over_licensed_notice else []
        )


def accounts_to_reconcile(session: Session, slug: str | None) -> list[tuple[int, str]]:
    """(id, slug) of the named account, or of every account with a Stripe subscription.

    Raises AccountError for an unknown account or one with nothing at Stripe to compare with.
    """
    if slug is not None:
        account = get_account(session, slug)
        if account.id is None or not account.stripe_subscription_id:
            raise AccountError(
                f"{account.slug} has no Stripe subscription: nothing to reconcile.",
                ErrorCode.NO_SUBSCRIPTION,
            )
        return [(account.id, account.slug)]
    rows = session.exec(
        select(Account.id, Account.slug)
        .where(col(Account.stripe_subscription_id).is_not(None))
        .order_by(col(Account.slug))
    )
    return [(account_id, account_slug) for account_id, account_slug in rows if account_id]


def reconcile(service: BillingService, account_id: int, *, actor: str) -> Reconciliation:
    """Run the pass for one account (raises GatewayError when Stripe cannot be read: nothing is
    changed then)."""
    changes = service.resync(account_id, actor=actor)
    with session_scope() as session:
        account = session.get_one(Account, account_id)
        used = licenses_used(session, account_id)
        return Reconciliation(
            slug=account.slug,
            # Users exceeding licenses is a finding, not a repair: the notice says it.
            repairs=[
                describe(change.action, change.ok, change.detail)
                for change in changes
                if change.action != AuditAction.USERS_EXCEED_LICENSES
            ],
            licenses_used=used,
            licenses_purchased=account.licenses_purchased,
            over_licensed_notice=over_licensed_notice(
                account.plan, used, account.licenses_purchased
            ),
        )
