import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from billing_app.models import Account, ActivatedUser, AllowedDomain, AuditLog
from billing_app.services import accounts
from billing_app.services.emails import InvalidEmail
from billing_app.services.launch_tokens import InvalidLaunchToken


def test_migrations_build_exactly_the_models(engine):
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_create_account_allows_the_admin_domain_and_audits(engine):
    with Session(engine) as session:
        account = accounts.create_account(
            session, slug=" Acme-Corp ", name=" Acme ", admin_email="Boss@Acme.Test", actor="cli"
        )
        session.commit()
        assert (account.slug, account.name, account.admin_email, account.plan) == (
            "acme-corp",
            "Acme",
            "boss@acme.test",
            "free",
        )
        assert session.exec(select(AllowedDomain.domain)).all() == ["acme.test"]
        entry = session.exec(select(AuditLog)).one()
        assert (entry.action, entry.actor, entry.account_id) == (
            "account.create",
            "cli",
            account.id,
        )


@pytest.mark.parametrize(
    "slug, name, email, error",
    [
        ("bad slug!", "X", "a@b.co", accounts.AccountError),
        ("ok", "", "a@b.co", accounts.AccountError),
        ("ok", "X" * 201, "a@b.co", accounts.AccountError),
        ("ok", "X", "not-an-email", InvalidEmail),
    ],
)
def test_bad_account_input_changes_nothing(engine, slug, name, email, error):
    with Session(engine) as session:
        with pytest.raises(error):
            accounts.create_account(session, slug=slug, name=name, admin_email=email, actor="cli")
        session.rollback()
        assert session.exec(select(Account)).all() == []


def test_duplicate_account_is_refused(engine):
    with Session(engine) as session:
        accounts.create_account(
            session, slug="acme", name="Acme", admin_email="a@acme.test", actor="cli"
        )
        with pytest.raises(accounts.AccountError, match="already exists"):
            accounts.create_account(
                session, slug="acme", name="Other", admin_email="b@acme.test", actor="cli"
            )


def test_one_user_per_email_and_account(engine):
    with Session(engine) as session:
        account = accounts.create_account(
            session, slug="acme", name="Acme", admin_email="a@acme.test", actor="cli"
        )
        session.add(ActivatedUser(account_id=account.id, email="x@acme.test"))
        session.commit()
        session.add(ActivatedUser(account_id=account.id, email="x@acme.test"))
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()


def test_api_key_is_stored_only_as_a_hash(engine):
    with Session(engine) as session:
        account = accounts.create_account(
            session, slug="acme", name="Acme", admin_email="a@acme.test", actor="cli"
        )
        key = accounts.issue_api_key(session, account, actor="cli")
        session.commit()
        assert key.startswith("cbk_") and key not in account.api_key_hash
        assert accounts.account_for_api_key(session, key) == account
        assert accounts.account_for_api_key(session, key + "x") is None
        newer = accounts.issue_api_key(session, account, actor="cli")
        session.commit()
        assert accounts.account_for_api_key(session, newer) == account
        assert accounts.account_for_api_key(session, key) is None


def test_launch_link_opens_once(engine, settings):
    with Session(engine) as session:
        account = accounts.create_account(
            session, slug="acme", name="Acme", admin_email="a@acme.test", actor="cli"
        )
        url = accounts.launch_url(settings, account)
        assert url.startswith("http://localhost:3999/?launch=")
        token = url.split("launch=", 1)[1]
        opened, claims = accounts.redeem_launch_token(session, settings, token)
        assert opened.id == account.id and claims.email == "a@acme.test"
        # The tab that redeemed it may present it again (a reload); nobody else may.
        again, _ = accounts.redeem_launch_token(
            session, settings, token, already_bound_token_id=claims.token_id
        )
        assert again.id == account.id
        with pytest.raises(InvalidLaunchToken, match="already used"):
            accounts.redeem_launch_token(session, settings, token)


def test_launch_link_for_a_deleted_account_is_refused(engine, settings):
    with Session(engine) as session:
        ghost = Account(id=999, slug="ghost", name="Ghost", admin_email="g@ghost.test")
        token = accounts.launch_url(settings, ghost).split("launch=", 1)[1]
        with pytest.raises(InvalidLaunchToken, match="unknown account"):
            accounts.redeem_launch_token(session, settings, token)
