"""A UserError becomes what its entry point shows, in one place: the license API's JSON refusal
(api/routes.py) and the CLI's one-line error (cli.main). Both are driven through their real entry
points, against the test run's database."""

import io
import uuid
import warnings

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from billing_app import cli
from billing_app.api import licenses
from billing_app.api.routes import build_api
from billing_app.db import session_scope
from billing_app.errors import ErrorCode
from billing_app.runner import migrate
from billing_app.services.accounts import create_account, issue_api_key
from billing_app.settings import get_settings

with warnings.catch_warnings():
    # Starlette now prefers the `httpx2` package; the pinned httpx still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


@pytest.fixture
def database() -> None:
    migrate(get_settings().database_url)


@pytest.fixture
def slug(database) -> str:
    return f"err-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api(database):
    with TestClient(
        build_api(licenses.routes), base_url="http://testserver/api/v1/licenses"
    ) as client:
        yield client


@pytest.fixture
def api_key(slug) -> str:
    with session_scope() as session:
        account = create_account(
            session, slug=slug, name=slug, admin_email=f"admin@{slug}.test", actor="test"
        )
        return issue_api_key(session, account, actor="test")


# The license API -------------------------------------------------------------------------------


def test_an_invalid_email_is_answered_with_its_code_and_message(api, api_key):
    headers = {"Authorization": f"Bearer {api_key}"}
    for response in (
        api.post("/activate", json={"email": "not an address"}, headers=headers),
        api.get("/check", params={"email": "not an address"}, headers=headers),
        api.post("/release", json={"email": "a@b"}, headers=headers),
    ):
        assert response.status_code == 400
        assert response.json() == {
            "error": ErrorCode.INVALID_EMAIL,
            "message": "Enter one email address, such as name@example.com.",
        }


def test_refusals_keep_their_status_code_and_headers(api, api_key):
    no_key = api.get("/check", params={"email": "a@b.test"})
    assert (no_key.status_code, no_key.json()["error"]) == (401, "unauthorized")
    assert no_key.headers["www-authenticate"] == "Bearer"

    wrong_method = api.get("/activate", headers={"Authorization": f"Bearer {api_key}"})
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"

    too_large = api.post(
        "/activate",
        content=b"{" + b" " * 5000 + b"}",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert (too_large.status_code, too_large.json()["error"]) == (413, "body_too_large")


def test_a_malformed_body_is_told_to_a_known_key_only(api, api_key):
    def activate(key: str):
        return api.post("/activate", content=b"[1, 2]", headers={"Authorization": f"Bearer {key}"})

    known, unknown = activate(api_key), activate("cbk_nope")
    assert (known.status_code, known.json()["error"]) == (400, "bad_request")
    assert (unknown.status_code, unknown.json()["error"]) == (401, "unauthorized")


# The CLI ---------------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`billing-admin argv…` → (exit code, standard output, standard error)."""
    try:
        cli.main(argv)
        code = 0
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_a_user_error_and_exits_1(slug, capsys):
    code, _out, err = run_cli(["launch-url", slug], capsys)
    assert (code, err) == (1, f"billing-admin: error: No account {slug!r}.\n")

    bad_slug = ["create-account", "Not A Slug!", "--name", "X", "--admin-email", "a@b.test"]
    code, _out, err = run_cli(bad_slug, capsys)
    assert code == 1
    assert err.startswith("billing-admin: error: Account id must be 1-64 lower-case letters")

    bad_email = ["create-account", slug, "--name", "X", "--admin-email", "nobody"]
    code, _out, err = run_cli(bad_email, capsys)
    assert (code, err) == (
        1,
        "billing-admin: error: Enter one email address, such as name@example.com.\n",
    )


def test_cli_reports_a_refused_password_without_a_traceback(slug, capsys, monkeypatch):
    with session_scope() as session:
        create_account(session, slug=slug, name=slug, admin_email=f"admin@{slug}.test", actor="t")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _out, err = run_cli(["set-password", slug, "--password-stdin"], capsys)
    assert (code, err) == (1, "billing-admin: error: Use at least 10 characters.\n")


def test_cli_success_says_so_and_exits_0(slug, capsys):
    code, out, err = run_cli(
        ["create-account", slug, "--name", "Acme", "--admin-email", f"admin@{slug}.test"], capsys
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"created account {slug} (Acme, admin@{slug}.test)")
