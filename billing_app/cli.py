"""`billing-admin`: the operator's command line (accounts, connector API keys, launch links, page
passwords, the reconcile pass, migrations, the demo accounts, and the start of the whole app for
`make run`)."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys

from sqlalchemy.exc import OperationalError

from billing_app.errors import ErrorCode, UserError
from billing_app.i18n import SUPPORTED_LOCALES
from billing_app.settings import get_settings, get_settings_or_exit


class CommandError(UserError):
    """A failure the operator can fix; printed without a traceback, exit code 1."""

    code = ErrorCode.COMMAND_FAILED


def cmd_migrate(_args) -> None:
    from billing_app.runner import migrate

    migrate(get_settings().database_url)
    print("database is at the newest schema")


def cmd_create_account(args) -> None:
    from billing_app.db import session_scope
    from billing_app.services.accounts import create_account

    with session_scope() as session:
        account = create_account(
            session,
            slug=args.account,
            name=args.name,
            admin_email=args.admin_email,
            actor="billing-admin",
        )
    print(
        f"created account {account.slug} ({account.name}, {account.admin_email}) on the free "
        "version"
    )


def cmd_seed_demo(_args) -> None:
    from billing_app.services.gateway import get_gateway
    from billing_app.services.seeding import seed_demo

    settings = get_settings()
    for slug in seed_demo(get_gateway(), settings):
        print(f"demo account ready: {slug}")


def cmd_launch_url(args) -> None:
    from billing_app.db import session_scope
    from billing_app.services.accounts import get_account, launch_url

    settings = get_settings()
    with session_scope() as session:
        print(launch_url(settings, get_account(session, args.account), args.email, args.locale))


def cmd_api_key(args) -> None:
    from billing_app.db import session_scope
    from billing_app.services.accounts import get_account, issue_api_key

    with session_scope() as session:
        key = issue_api_key(session, get_account(session, args.account), actor="billing-admin")
    print(key)
    print(
        "Store this key in the connector now: it is not kept and cannot be shown again.",
        file=sys.stderr,
    )


def cmd_set_password(args) -> None:
    from billing_app.db import session_scope
    from billing_app.services.accounts import get_account
    from billing_app.services.audit import AuditAction
    from billing_app.services.passwords import check_new_password, set_password

    password = _read_new_password(args.password_stdin)
    with session_scope() as session:
        account = get_account(session, args.account)
        check_new_password(account, password, password)
        set_password(
            session,
            account,
            password,
            actor="billing-admin",
            action=AuditAction.ACCOUNT_SET_PASSWORD,
        )
    print(
        f"password set for {args.account}; its Billing Page now asks for it (signed-in sessions "
        "were ended)"
    )


def _read_new_password(from_stdin: bool) -> str:
    """The new password: typed at a hidden prompt (twice) on a terminal, else the first line of a
    pipe.

    Never from a terminal with echo on (it would stay on the screen and in terminal logs),
    never as an argument (it would land in the shell history), never printed.
    """
    if sys.stdin.isatty():
        password = getpass.getpass("New page password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise CommandError("the two passwords differ; nothing changed")
        return password
    if not from_stdin:
        raise CommandError(
            "give the password on standard input with --password-stdin, or run this in a terminal "
            "to be prompted (never as an argument: it would land in the shell history)"
        )
    return sys.stdin.readline().rstrip("\r\n")


def cmd_clear_password(args) -> None:
    from billing_app.db import session_scope
    from billing_app.services.accounts import get_account
    from billing_app.services.audit import AuditAction
    from billing_app.services.passwords import set_password

    with session_scope() as session:
        account = get_account(session, args.account)
        if account.password_hash is None:
            print(f"{args.account} has no password; nothing changed")
            return
        set_password(
            session, account, None, actor="billing-admin", action=AuditAction.ACCOUNT_CLEAR_PASSWORD
        )
    print(f"password cleared for {args.account}")


def cmd_reconcile(args) -> None:
    from billing_app.db import session_scope
    from billing_app.services.gateway import get_billing_service
    from billing_app.services.reconcile import accounts_to_reconcile, reconcile
    from billing_app.stripe.errors import GatewayError

    with session_scope() as session:
        targets = accounts_to_reconcile(session, args.account)
    if not targets:
        print("no account has a Stripe subscription; nothing to reconcile")
    failed = []
    for account_id, slug in targets:
        try:
            result = reconcile(get_billing_service(), account_id, actor="billing-admin")
        except GatewayError as exc:
            # One account's failure does not keep the others out of step.
            print(f"{slug}: Stripe error, nothing changed: {exc.message}", file=sys.stderr)
            failed.append(slug)
            continue
        for line in result.lines():
            print(f"{slug}: {line}")
    if failed:
        raise CommandError(f"not reconciled: {', '.join(failed)}")


def cmd_run(_args) -> None:
    from billing_app.runner import Stack, migrate
    from billing_app.services.accounts import get_account, launch_url
    from billing_app.services.gateway import get_gateway
    from billing_app.services.seeding import seed_demo

    settings = get_settings()
    # Let `kill` stop the children as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with Stack(settings) as stack:
        stack.check_ports()
        migrate(settings.database_url)
        if settings.test_mode:
            print(f"test mode: starting localstripe on 127.0.0.1:{settings.localstripe_port}")
            stack.start_localstripe()
        slugs = seed_demo(get_gateway(), settings)
        print(
            f"starting the app on port {settings.billing_port} (the first start builds the "
            "frontend)..."
        )
        stack.start_app()
        development = settings.billing_env == "development"
        if development:
            stack.start_demo_host()
        from billing_app.db import session_scope

        with session_scope() as session:
            links = [(slug, launch_url(settings, get_account(session, slug))) for slug in slugs]
        if development:
            print(
                f"\nDemo connector host (a mail client; its $ button opens the Billing Page): "
                f"{settings.demo_host_url}"
            )
        print(
            "\nBilling Page is running. Launch links (valid "
            f"{settings.billing_launch_ttl_seconds // 60} min, one use each; "
            "`.venv/bin/billing-admin launch-url ACCOUNT` prints new ones):"
        )
        for slug, url in links:
            print(f"  {slug:10} {url}")
        print("\nCtrl-C stops everything.")
        code = stack.wait()
    sys.exit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="billing-admin", description="Operate the connector's Billing Page."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("create-account", help="create an account on the free version")
    p.add_argument("account", metavar="ACCOUNT", help="short id, e.g. acme-corp")
    p.add_argument("--name", required=True, help="company name shown on the page")
    p.add_argument("--admin-email", required=True, help="the account admin's email")
    p.set_defaults(func=cmd_create_account)

    p = sub.add_parser("seed-demo", help="create or repair the demo accounts (idempotent)")
    p.set_defaults(func=cmd_seed_demo)

    p = sub.add_parser(
        "launch-url", help="print a signed launch link for an account's Billing Page"
    )
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("--email", help="who opens it (default: the account's admin email)")
    p.add_argument(
        "--locale",
        choices=SUPPORTED_LOCALES,
        help="the page's language (default: the browser's, else English)",
    )
    p.set_defaults(func=cmd_launch_url)

    p = sub.add_parser("api-key", help="issue a new connector API key (replaces the old one)")
    p.add_argument("account", metavar="ACCOUNT")
    p.set_defaults(func=cmd_api_key)

    p = sub.add_parser("set-password", help="protect an account's Billing Page with a password")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (a pipe); "
        "in a terminal it is asked for at a hidden prompt",
    )
    p.set_defaults(func=cmd_set_password)

    p = sub.add_parser("clear-password", help="remove an account's page password")
    p.add_argument("account", metavar="ACCOUNT")
    p.set_defaults(func=cmd_clear_password)

    p = sub.add_parser(
        "reconcile",
        help="bring licenses, plan and card in step with Stripe (reads Stripe, never charges); "
        "every account with a Stripe subscription when none is named",
    )
    p.add_argument("account", metavar="ACCOUNT", nargs="?")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "run",
        help="migrate, seed the demo, start everything (in development also the demo connector "
        "host) and print its URL and launch links",
    )
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # Every command, `run` included, stops here on bad, missing or (in production) unsafe settings.
    get_settings_or_exit("billing-admin")
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C or SIGTERM before `run` was up; the stack has been stopped
    except UserError as exc:  # bad input, an unknown account, a port taken, a Stripe refusal
        print(f"billing-admin: error: {exc.message}", file=sys.stderr)
        sys.exit(1)
    except OperationalError as exc:
        print(
            f"billing-admin: error: the database is not reachable or not migrated "
            f"(run `billing-admin migrate`): {exc.orig}",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
