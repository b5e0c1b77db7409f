"""The "User Management" tab's states: activated add-on users and allowed email domains.

Thin: the rules live in services/seats.py and services/domains.py. Every
handler that reads or changes the account's data starts with `require_account`
(states/page.py), and refreshes the license counts in the same transaction as
its change, so they update without a reload.

Three states, so that an event re-renders only the part of the tab it changes
(the browser re-renders every component that reads a changed state): the list,
the removal confirmation, and the domain form. Changes of the local database
answer within one round trip, so they send no "working…" step first.
"""

from __future__ import annotations

import reflex as rx
from sqlmodel import Session

from billing_app.db import session_scope
from billing_app.errors import UserError
from billing_app.i18n import _, format_number, ngettext
from billing_app.models import Account
from billing_app.services import domains, seats
from billing_app.services.summary import UserListRow, user_list_rows
from billing_app.states.page import DENIED_MESSAGE, SignedIn, require_account

NEW_USER_INPUT_ID = "new-user-email"
DOMAIN_FIELD_PREFIX = "domain-"
# What a client sends is cut to size before it is kept (any client may send any event with any
# arguments; the services validate the content): an address is at most 254 characters, a domain 253,
# with room for the spaces and the leading "@" an admin may type.
MAX_EMAIL_CHARS = 254
MAX_DOMAIN_INPUT_CHARS = 300


def _text(value: object, max_chars: int) -> str:
    """A string a client sent, cut to `max_chars`; anything else is ""."""
    return value[:max_chars] if isinstance(value, str) else ""


def _users(count: int) -> str:
    return ngettext("%(count)s user", "%(count)s users", count) % {"count": format_number(count)}


def _show_counts(session: Session, access: SignedIn) -> None:
    access.page._show_summary(session, session.get_one(Account, access.account_id))


class UsersState(rx.State):
    # "Activated Add-on users": one page of the list.
    users: list[UserListRow] = []
    total_users: int = 0
    page_index: int = 0
    page_count: int = 1
    range_label: str = ""
    search: str = ""
    loading: bool = False
    add_error: str = ""

    def _show_users(self, session: Session, account_id: int) -> None:
        """The current page of the list (search and page index kept), as `session` sees it."""
        listing = seats.list_users(session, account_id, search=self.search, page=self.page_index)
        self.users = user_list_rows(listing.users)
        self.total_users, self.page_index, self.page_count = (
            listing.total,
            listing.page,
            listing.page_count,
        )
        first = listing.page * seats.PAGE_SIZE
        self.range_label = (
            f"{first + 1:,}–{first + len(listing.users):,} of {listing.total:,}"
            if listing.total
            else ""
        )

    @rx.event
    async def load(self):
        """Opening the tab: the first page of users and the saved domains."""
        if (access := await require_account(self)) is None:
            return
        self.loading, self.search, self.page_index, self.add_error = True, "", 0, ""
        domain_form = await self.get_state(DomainsState)
        yield
        with session_scope() as session:
            self._show_users(session, access.account_id)
            domain_form._show_domains(session, access.account_id)
        self.loading = False

    def _show_page(self, account_id: int, page_index: int) -> None:
        self.page_index = page_index
        with session_scope() as session:
            self._show_users(session, account_id)

    @rx.event
    async def set_search(self, value: str):
        if (access := await require_account(self)) is not None:
            self.search = _text(value, seats.MAX_SEARCH_CHARS)
            self._show_page(access.account_id, 0)

    @rx.event
    async def previous_page(self):
        if (access := await require_account(self)) is not None:
            self._show_page(access.account_id, self.page_index - 1)

    @rx.event
    async def next_page(self):
        if (access := await require_account(self)) is not None:
            self._show_page(access.account_id, self.page_index + 1)

    @rx.event
    async def add_user(self, form_data: dict):
        """The admin activates a user themselves: the license API's rules and messages."""
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        page, account_id = access
        self.add_error = ""
        email = form_data.get("email") if isinstance(form_data, dict) else None
        try:
            with session_scope() as session:
                activation = seats.activate(session, account_id, email, actor=page.actor)
                if activation.licensed:
                    self._show_users(session, account_id)
                    _show_counts(session, access)
        except UserError as exc:
            self.add_error = exc.message
            return
        if not activation.licensed:
            self.add_error = activation.message
            return
        yield rx.set_value(NEW_USER_INPUT_ID, "")
        yield rx.toast.success(activation.message)


class RemoveUserState(rx.State):
    """The "Remove <email>" confirmation: "Yes" releases the user's license at once."""

    confirm_email: str = ""  # the user whose removal waits for "Yes" / "No"

    @rx.event
    def ask_remove(self, email: str):
        if isinstance(email, str) and len(email) <= MAX_EMAIL_CHARS:  # longer is nobody's address
            self.confirm_email = email

    @rx.event
    def cancel_remove(self):
        self.confirm_email = ""

    @rx.event
    async def remove_user(self):
        """ "Yes" in the confirmation."""
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        page, account_id = access
        email, self.confirm_email = self.confirm_email, ""
        if not email:  # a second click on "Yes" as the dialog closes
            return
        user_list = await self.get_state(UsersState)
        try:
            with session_scope() as session:
                released = seats.release(session, account_id, email, actor=page.actor)
                user_list._show_users(session, account_id)
                _show_counts(session, access)
        except UserError as exc:
            yield rx.toast.error(exc.message)
            return
        if released:
            yield rx.toast.success(
                _("%(email)s was removed: their license is free.") % {"email": email}
            )
        else:
            yield rx.toast.error(_("%(email)s had no license.") % {"email": email})


class DomainsState(rx.State):
    """ "Email Domain allowed to use licenses": the list being edited, saved by "Update"."""

    own_domain: str = ""
    domain_drafts: list[str] = []
    domain_error: str = ""
    # Removed domains whose users still hold licenses, offered for release.
    orphaned_domains: list[str] = []
    orphaned_message: str = ""
    releasing: bool = False  # releasing a whole domain's users may take a while

    def _show_domains(self, session: Session, account_id: int) -> None:
        """The saved domains, as `session` sees them; drops an earlier error and release offer."""
        account = session.get_one(Account, account_id)
        self.own_domain = domains.admin_domain(account)
        self.domain_drafts = [
            d for d in domains.allowed_domains(session, account_id) if d != self.own_domain
        ]
        self.domain_error, self.orphaned_domains, self.orphaned_message = "", [], ""

    @rx.event
    def edit_domain(self, index: int, value: str):
        if isinstance(index, int) and 0 <= index < len(self.domain_drafts):
            self.domain_drafts[index] = _text(value, MAX_DOMAIN_INPUT_CHARS)

    @rx.event
    def add_domain_row(self):
        if len(self.domain_drafts) < domains.MAX_DOMAINS:
            self.domain_drafts.append("")

    @rx.event
    def remove_domain_row(self, index: int):
        if isinstance(index, int) and 0 <= index < len(self.domain_drafts):
            self.domain_drafts.pop(index)

    @rx.event
    async def save_domains(self, form_data: dict):
        """ "Update": save the edited list, or say what is wrong and save nothing."""
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        page, account_id = access
        if not isinstance(form_data, dict):
            return
        # The form's fields, not the drafts: they hold what was typed even before it reached the
        # state. One more than allowed is enough for the service to say there are too many.
        entries = [
            value[:MAX_DOMAIN_INPUT_CHARS] if isinstance(value, str) else value
            for name, value in form_data.items()
            if str(name).startswith(DOMAIN_FIELD_PREFIX)
        ]
        entries = entries[: domains.MAX_DOMAINS + 1]
        try:
            with session_scope() as session:
                account = session.get_one(Account, account_id)
                change = domains.replace_domains(session, account, entries, actor=page.actor)
                orphans = seats.users_of_domains(session, account_id, change.removed)
                self._show_domains(session, account_id)
        except UserError as exc:
            self.domain_error = exc.message
            return
        self.orphaned_domains = sorted(orphans)
        self.orphaned_message = (
            _("%(users)s of %(domains)s still hold licenses.")
            % {"users": _users(sum(orphans.values())), "domains": ", ".join(self.orphaned_domains)}
            if orphans
            else ""
        )
        yield rx.toast.success(
            _("Allowed domains updated.")
            if change.added or change.removed
            else _("No change to save.")
        )

    @rx.event
    async def release_orphaned_users(self):
        """Release the users of the domains just removed (offered after "Update")."""
        if (access := await require_account(self)) is None:
            yield rx.toast.error(_(DENIED_MESSAGE))
            return
        page, account_id = access
        self.releasing = True
        yield
        user_list = await self.get_state(UsersState)
        with session_scope() as session:
            account = session.get_one(Account, account_id)
            released = seats.release_users_of_domains(
                session, account, self.orphaned_domains, actor=page.actor
            )
            user_list._show_users(session, account_id)
            _show_counts(session, access)
        self.releasing, self.orphaned_domains, self.orphaned_message = False, [], ""
        yield rx.toast.success(_("%(users)s released.") % {"users": _users(released)})

    @rx.event
    def keep_orphaned_users(self):
        self.orphaned_domains, self.orphaned_message = [], ""
