"""The connector's license API: activate, check and release a user's license.

JSON in and out, `Authorization: Bearer <account API key>`. Refusals are JSON
with a stable `error` code for the connector and a `message` for people:
400 bad input, 401 no or wrong key, 402 free version, 403 domain not allowed,
405 wrong method, 409 no free license (or more users than licenses), 413 body over 4 KB,
503 database busy (retry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billing_app.api.routes import ApiError
from billing_app.db import get_engine, session_scope
from billing_app.errors import MSG_BUSY, ErrorCode
from billing_app.models import Account
from billing_app.services import seats
from billing_app.services.accounts import account_for_api_key
from billing_app.services.license_answers import CheckAnswer
from billing_app.services.seats import Outcome

MAX_BODY_BYTES = 4096
MAX_API_KEY_CHARS = 200
ACTOR = "connector (license API)"
_REFUSAL_STATUS = {
    Outcome.PLAN_REQUIRED: 402,
    Outcome.DOMAIN_NOT_ALLOWED: 403,
    Outcome.NO_FREE_LICENSE: 409,
    Outcome.USERS_EXCEED_LICENSES: 409,
}
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


class EmailBody(BaseModel):
    """The JSON body of activate and release: `{"email": "…"}` (other keys are ignored)."""

    model_config = ConfigDict(strict=True)  # a number or a list is not an email
    email: str


class CheckQuery(BaseModel):
    """The query of check: `?email=…`, given once."""

    email: list[str] = Field(min_length=1, max_length=1)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def _bearer_key(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > MAX_API_KEY_CHARS:
        raise _unauthorized("Send the account's API key as: Authorization: Bearer <key>.")
    return key


async def _read_body(request: Request) -> bytes:
    """The request body, refused (413) past MAX_BODY_BYTES whether or not a length was declared."""
    too_large = ApiError(
        413, "body_too_large", f"The request body is limited to {MAX_BODY_BYTES} bytes."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


async def _email_from_json(request: Request) -> str:
    body = await _read_body(request)
    try:
        return EmailBody.model_validate_json(body).email
    except ValidationError as exc:
        raise ApiError(
            400, "bad_request", 'Send a JSON object such as {"email": "name@example.com"}.'
        ) from exc


async def _email_from_query(request: Request) -> str:
    try:
        return CheckQuery(email=request.query_params.getlist("email")).email[0]
    except ValidationError as exc:
        raise ApiError(400, "bad_request", "Give one email: ?email=name@example.com.") from exc


def _unknown_key() -> ApiError:
    return _unauthorized("Unknown API key. Get one with: billing-admin api-key ACCOUNT.")


def _refuse(key: str, bad_request: ApiError) -> NoReturn:
    """A malformed request is told so to a known key only: a wrong key is told so first."""
    with session_scope() as session:
        if account_for_api_key(session, key) is None:
            raise _unknown_key()
    raise bad_request


async def _check(key: str, email: str) -> JSONResponse:
    answer = seats.cached_check(key, email) or await run_in_threadpool(_read_check, key, email)
    return JSONResponse({"licensed": answer.licensed, "plan": answer.plan})


def _read_check(key: str, email: str) -> CheckAnswer:
    with get_engine().connect() as connection:
        answer = seats.check(connection, key, email)
    if answer is None:
        raise _unknown_key()
    return answer


def _with_account(
    action: Callable[[Session, Account, str], JSONResponse],
) -> Callable[[str, str], Awaitable[JSONResponse]]:
    """`action` with the key's account, in one session (one transaction), in a worker thread (the
    database calls block)."""

    def serve(key: str, email: str) -> JSONResponse:
        with session_scope() as session:
            account = account_for_api_key(session, key)
            if account is None:
                raise _unknown_key()
            return action(session, account, email)

    async def serve_in_thread(key: str, email: str) -> JSONResponse:
        return await run_in_threadpool(serve, key, email)

    return serve_in_thread


@_with_account
def _activate(session: Session, account: Account, email: str) -> JSONResponse:
    assert account.id is not None  # read from the database
    activation = seats.activate(session, account.id, email, actor=ACTOR)
    body: dict[str, Any] = {
        "licensed": activation.licensed,
        "email": activation.email,
        "plan": activation.plan,
        "licenses_used": activation.licenses_used,
        "licenses_purchased": activation.licenses_purchased,
        "message": activation.message,
    }
    if activation.licensed:
        return JSONResponse(
            {**body, "already_active": activation.outcome == Outcome.ALREADY_ACTIVE}
        )
    return JSONResponse(
        {**body, "error": activation.outcome.value}, _REFUSAL_STATUS[activation.outcome]
    )


@_with_account
def _release(session: Session, account: Account, email: str) -> JSONResponse:
    assert account.id is not None  # read from the database
    released = seats.release(session, account.id, email, actor=ACTOR)
    return JSONResponse({"released": released, "licensed": False})


def _route(
    path: str,
    method: str,
    read_email: Callable[[Request], Awaitable[str]],
    action: Callable[[str, str], Awaitable[JSONResponse]],
) -> Route:
    async def endpoint(request: Request) -> JSONResponse:
        # Refusals (ApiError, an invalid email) are raised: api/routes.py answers them.
        if request.method != method:
            # Answered here: otherwise the request would fall through to the page app's 404.
            raise ApiError(405, "method_not_allowed", f"Use {method}.", {"Allow": method})
        key = _bearer_key(request)
        try:
            try:
                email = await read_email(request)
            except ApiError as exc:
                await run_in_threadpool(_refuse, key, exc)
                raise
            return await action(key, email)
        except sa.exc.OperationalError as exc:
            # e.g. SQLite busy past its timeout under a burst: nothing was written, the call can be
            # repeated.
            raise ApiError(503, ErrorCode.BUSY, MSG_BUSY, {"Retry-After": "1"}) from exc

    # Every method reaches the endpoint, which answers a wrong one itself.
    return Route(path, endpoint, methods=_ANY_METHOD)


routes = [
    _route("/api/v1/licenses/activate", "POST", _email_from_json, _activate),
    _route("/api/v1/licenses/check", "GET", _email_from_query, _check),
    _route("/api/v1/licenses/release", "POST", _email_from_json, _release),
]
