"""The "User Management" tab's state: activated add-on users and allowed email domains.

Thin: the rules live in services/seats.py and services/domains.py. Every
handler that changes something first checks that the tab is bound to an
account (PageState), and afterwards refreshes the page summary so the license
counts change without a reload.
"""

from __future__ import annotations

import reflex as rx

from billing_app.db import session_scope
from billing_app.models import Account
from billing_app.services import domains, seats
from billing_app.services.domains import InvalidDomain
from billing_app.services.emails import InvalidEmail
from billing_app.services.summary import format_date
from billing_app.states.page import DENIED_MESSAGE, PageState

NEW_USER_INPUT_ID = "new-user-email"
DOMAIN_FIELD_PREFIX = "domain-"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


class UsersState(rx.State):
    # "Activated Add-on users": one page of the list.
    users: list[dict[str, str]] = []
    total_users: int = 0
    page_index: int = 0
    page_count: int = 1
    range_label: str = ""
    search: str = ""
    loading: bool = False
    confirm_email: str = ""  # the user whose removal waits for "Yes" / "No"
    removing: bool = False
    adding: bool = False
    add_error: str = ""

    # "Email Domain allowed to use licenses": the list being edited, saved by "Update".
    own_domain: str = ""
    domain_drafts: list[str] = []
    saving_domains: bool = False
    domain_error: str = ""
    # Removed domains whose users still hold licenses, offered for release.
    orphaned_domains: list[str] = []
    orphaned_message: str = ""
    releasing: bool = False

    async def _bound(self) -> tuple[PageState, int] | None:
        """The page state and the account this tab is bound to, else None: the access check, made once
        per event (each `PageState.account_id` reads the account again)."""
        page = await self.get_state(PageState)
        account_id = page.account_id
        return None if account_id is None else (page, account_id)

    def _load_users(self, account_id: int) -> None:
        with session_scope() as session:
            listing = seats.list_users(session, account_id, search=self.search, page=self.page_index)
        self.users = [{"email": user.email, "activated": format_date(user.activated_at)} for user in listing.users]
        self.total_users, self.page_index, self.page_count = listing.total, listing.page, listing.page_count
        first = listing.page * seats.PAGE_SIZE
        self.range_label = f"{first + 1:,}–{first + len(listing.users):,} of {listing.total:,}" if listing.total else ""

    def _load_domains(self, account_id: int) -> None:
        with session_scope() as session:
            account = session.get(Account, account_id)
            self.own_domain = domains.admin_domain(account)
            self.domain_drafts = [d for d in domains.allowed_domains(session, account_id) if d != self.own_domain]

    @rx.event
    async def load(self):
        """Opening the tab: the first page of users and the saved domains."""
        if (bound := await self._bound()) is None:
            return
        _page, account_id = bound
        self.loading, self.search, self.page_index = True, "", 0
        self.add_error = self.domain_error = ""
        self.orphaned_domains, self.orphaned_message = [], ""
        yield
        self._load_users(account_id)
        self._load_domains(account_id)
        self.loading = False

    async def _show_page(self, page_index: int):
        if (bound := await self._bound()) is not None:
            self.page_index = page_index
            self._load_users(bound[1])

    @rx.event
    async def set_search(self, value: str):
        self.search = value[: seats.MAX_SEARCH_CHARS]
        await self._show_page(0)

    @rx.event
    async def previous_page(self):
        await self._show_page(self.page_index - 1)

    @rx.event
    async def next_page(self):
        await self._show_page(self.page_index + 1)

    @rx.event
    def ask_remove(self, email: str):
        self.confirm_email = email

    @rx.event
    def cancel_remove(self):
        if not self.removing:
            self.confirm_email = ""

    @rx.event
    async def remove_user(self):
        """"Yes" in the confirmation: release the user's license now."""
        if (bound := await self._bound()) is None:
            yield rx.toast.error(DENIED_MESSAGE)
            return
        page, account_id = bound
        email, self.removing = self.confirm_email, True
        yield
        try:
            with session_scope() as session:
                released = seats.release(session, account_id, email, actor=page.actor)
        except InvalidEmail as exc:
            released, message = False, str(exc)
        else:
            message = f"{email} was removed: their license is free." if released else f"{email} had no license."
        self.removing, self.confirm_email = False, ""
        self._load_users(account_id)
        page.refresh()
        yield rx.toast.success(message) if released else rx.toast.error(message)

    @rx.event
    async def add_user(self, form_data: dict):
        """The admin activates a user themselves: the license API's rules and messages."""
        if (bound := await self._bound()) is None:
            yield rx.toast.error(DENIED_MESSAGE)
            return
        page, account_id = bound
        self.adding, self.add_error = True, ""
        yield
        try:
            with session_scope() as session:
                activation = seats.activate(session, account_id, form_data.get("email"), actor=page.actor)
        except InvalidEmail as exc:
            self.adding, self.add_error = False, str(exc)
            return
        # Enabled again with the result: a disabled button would block the next Enter in the form.
        self.adding = False
        if not activation.licensed:
            self.add_error = activation.message
            return
        self._load_users(account_id)
        page.refresh()
        yield rx.set_value(NEW_USER_INPUT_ID, "")
        yield rx.toast.success(activation.message)

    @rx.event
    def edit_domain(self, index: int, value: str):
        if 0 <= index < len(self.domain_drafts):
            self.domain_drafts[index] = value

    @rx.event
    def add_domain_row(self):
        self.domain_drafts.append("")

    @rx.event
    def remove_domain_row(self, index: int):
        if 0 <= index < len(self.domain_drafts):
            self.domain_drafts.pop(index)

    @rx.event
    async def save_domains(self, form_data: dict):
        """"Update": save the edited list, or say what is wrong and save nothing."""
        if (bound := await self._bound()) is None:
            yield rx.toast.error(DENIED_MESSAGE)
            return
        page, account_id = bound
        # The form's fields, not the drafts: they hold what was typed even before it reached the state.
        entries = [value for name, value in form_data.items() if name.startswith(DOMAIN_FIELD_PREFIX)]
        self.saving_domains, self.domain_error = True, ""
        yield
        try:
            with session_scope() as session:
                account = session.get(Account, account_id)
                change = domains.replace_domains(session, account, entries, actor=page.actor)
                orphans = seats.users_of_domains(session, account.id, change.removed)
        except InvalidDomain as exc:
            self.domain_error = str(exc)
            self.saving_domains = False
            return
        self._load_domains(account_id)
        self.orphaned_domains = sorted(orphans)
        self.orphaned_message = (
            f"{_plural(sum(orphans.values()), 'user')} of {', '.join(self.orphaned_domains)} still hold licenses."
            if orphans else ""
        )
        self.saving_domains = False
        yield rx.toast.success("Allowed domains updated." if change.added or change.removed else "No change to save.")

    @rx.event
    async def release_orphaned_users(self):
        """Release the users of the domains just removed (offered after "Update")."""
        if (bound := await self._bound()) is None:
            yield rx.toast.error(DENIED_MESSAGE)
            return
        page, account_id = bound
        self.releasing = True
        yield
        with session_scope() as session:
            account = session.get(Account, account_id)
            released = seats.release_users_of_domains(session, account, self.orphaned_domains, actor=page.actor)
        self.releasing, self.orphaned_domains, self.orphaned_message = False, [], ""
        self._load_users(account_id)
        page.refresh()
        yield rx.toast.success(f"{_plural(released, 'user')} released.")

    @rx.event
    def keep_orphaned_users(self):
        self.orphaned_domains, self.orphaned_message = [], ""
