"""Every public method of a Reflex State is an event any client may call over the websocket, with
any arguments: the handlers of every state are exactly the reviewed list below. A new public method
fails this test until it is reviewed (a real UI event added here, or a helper made private)."""

import reflex as rx

import billing_app.billing_app  # noqa: F401  (imports every page state)

REFLEX_OWN = {
    "reflex___state____state": {"hydrate", "hydrate_and_load", "set_is_hydrated", "setvar"},
    "reflex___state____state.reflex___state____on_load_internal_state": {
        "on_load_internal",
        "set_is_hydrated",
        "setvar",
    },
    "reflex___state____state.reflex___state____update_vars_internal_state": {
        "update_vars_internal",
        "setvar",
    },
    "reflex___state____state.reflex___state____frontend_event_exception_state": {
        "handle_frontend_exception",
        "setvar",
    },
    "reflex___state____state.reflex___istate___shared____shared_state_base_internal": {"setvar"},
}
DIALOG = {"open_form", "close", "set_open", "submit", "setvar"}
MONEY_DIALOG = DIALOG | {"payment_confirmed"}
CARD_FORM = MONEY_DIALOG | {"set_card_name", "card_mounted", "card_confirmed"}
REVIEWED = {
    "billing_app___states___page____page_state": {
        "open_page",
        "submit_password",
        "sign_out",
        "setvar",
    },
    "billing_app___states___access____change_password_state": DIALOG,
    "billing_app___states___activity____activity_state": {"load", "load_more", "setvar"},
    "billing_app___states___history____history_state": {
        "load",
        "load_more",
        "open_invoice",
        "download_invoice",
        "setvar",
    },
    "billing_app___states___users____users_state": {
        "load",
        "set_search",
        "previous_page",
        "next_page",
        "add_user",
        "setvar",
    },
    "billing_app___states___users____remove_user_state": {
        "ask_remove",
        "cancel_remove",
        "remove_user",
        "setvar",
    },
    "billing_app___states___users____domains_state": {
        "edit_domain",
        "add_domain_row",
        "remove_domain_row",
        "save_domains",
        "release_orphaned_users",
        "keep_orphaned_users",
        "setvar",
    },
    "billing_app___states___purchase____license_purchase_state": MONEY_DIALOG
    | {"set_count", "set_agreed", "preview"},
    "billing_app___states___purchase____upgrade_state": CARD_FORM
    | {"set_licenses", "set_interval", "set_agreed"},
    "billing_app___states___card____card_state": CARD_FORM | {"change_card"},
    "billing_app___states___plan_changes____yearly_state": MONEY_DIALOG,
    "billing_app___states___plan_changes____cancel_state": MONEY_DIALOG
    | {"set_reason", "set_features", "resume"},
    "billing_app___states___renewal_changes____reduce_licenses_state": MONEY_DIALOG
    | {"set_licenses", "show_users"},
    "billing_app___states___renewal_changes____switch_monthly_state": MONEY_DIALOG,
    "billing_app___states___renewal_changes____keep_current_state": {
        "close",
        "set_open",
        "payment_confirmed",
        "keep_licenses",
        "keep_yearly",
        "setvar",
    },
    # The setters only edit the form (country: its tax ID types); open_form and submit check the
    # session first (DialogMixin).
    "billing_app___states___billing_details____billing_details_state": DIALOG
    | {
        "set_name",
        "set_email",
        "set_line1",
        "set_line2",
        "set_city",
        "set_postal_code",
        "set_region",
        "set_country",
        "set_tax_id_type",
        "set_tax_id_value",
    },
    "billing_app___states___card____payment_authentication_state": {
        "authenticate",
        "authenticated",
        "setvar",
    },
}
ALLOWED = REFLEX_OWN | {
    f"reflex___state____state.{name}": handlers for name, handlers in REVIEWED.items()
}


def _all_states(state: type[rx.State]):
    yield state
    for substate in state.get_substates():
        yield from _all_states(substate)


def test_every_event_handler_is_reviewed():
    found = {state.get_full_name(): set(state.event_handlers) for state in _all_states(rx.State)}
    assert found == ALLOWED


def test_setvar_reaches_only_the_reviewed_setters():
    """`setvar(name, value)` calls the state's `set_<name>`: each is a reviewed handler of the state
    or Reflex's own `set_is_hydrated` (inherited from the root state)."""
    for state in _all_states(rx.State):
        setters = {
            name
            for name in dir(state)
            if name.startswith("set_") and callable(getattr(state, name))
        }
        assert setters <= ALLOWED[state.get_full_name()] | {"set_is_hydrated"}, (
            state.get_full_name()
        )
