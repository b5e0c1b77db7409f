"""The connector's license API (SPEC §2): activate, check and release a user's license.

JSON in and out, `Authorization: Bearer <account API key>`. Refusals are JSON
with a stable `error` code for the connector and a `message` for people:
400 bad input, 401 no or wrong key, 402 free version, 403 domain not allowed,
409 no free license, 413 body over 4 KB, 503 database busy (retry).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billing_app.db import get_engine, make_engine, session_scope
from billing_app.services import seats
from billing_app.services.accounts import account_id_for_api_key
from billing_app.services.emails import InvalidEmail
from billing_app.services.seats import Outcome
from billing_app.settings import get_settings

MAX_BODY_BYTES = 4096
MAX_API_KEY_CHARS = 200
INLINE_BUSY_TIMEOUT_MS = 10
ACTOR = "connector (license API)"
_REFUSAL_STATUS = {Outcome.PLAN_REQUIRED: 402, Outcome.DOMAIN_NOT_ALLOWED: 403, Outcome.NO_FREE_LICENSE: 409}
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_BODY_HINT = 'Send a JSON object such as {"email": "name@example.com"}.'


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "message": self.message}, self.status, headers=self.headers)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


_UNKNOWN_KEY_MESSAGE = "Unknown API key. Get one with: billing-admin api-key ACCOUNT."


def _bearer_key(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > MAX_API_KEY_CHARS:
        raise _unauthorized("Send the account's API key as: Authorization: Bearer <key>.")
    return key


async def _read_body(request: Request) -> bytes:
    """The request body, refused (413) past MAX_BODY_BYTES whether or not a length was declared."""
    too_large = ApiError(413, "body_too_large", f"The request body is limited to {MAX_BODY_BYTES} bytes.")
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
        payload = json.loads(body)
    except ValueError as exc:  # also UnicodeDecodeError
        raise ApiError(400, "bad_request", _BODY_HINT) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("email"), str):
        raise ApiError(400, "bad_request", _BODY_HINT)
    return payload["email"]


async def _email_from_query(request: Request) -> str:
    values = request.query_params.getlist("email")
    if len(values) != 1:
        raise ApiError(400, "bad_request", "Give one email: ?email=name@example.com.")
    return values[0]


def _on_sqlite() -> bool:
    return get_settings().database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def _inline_engine() -> Engine | None:
    """SQLite only: an engine for the reads answered on the event loop thread itself, else None.

    A read of a local SQLite file in WAL mode (~0.1 ms here, `bench/profile_hotpaths.py api`) never
    waits for writers, so it costs the event loop less than a hop to a worker thread and back.
    This engine has a pool of its own that never makes a caller wait (a read holds its connection
    within one step of the loop, so one connection per loop thread is all it uses) and a short busy
    timeout: should the file still be busy (e.g. its WAL being recovered), the request is served
    by a worker thread instead. PostgreSQL's network round trips always go to a worker thread.
    """
    if not _on_sqlite():
        return None
    engine = make_engine(get_settings().database_url, pool_size=1, max_overflow=-1)

    @sa.event.listens_for(engine, "connect")
    def _short_busy_timeout(dbapi_connection, _record):  # pragma: no cover - trivial
        dbapi_connection.execute(f"PRAGMA busy_timeout = {INLINE_BUSY_TIMEOUT_MS}")

    return engine


async def _read(read: Callable[[sa.Connection], Any]) -> Any:
    """`read(connection)` without a transaction to commit: inline on SQLite, else in a worker thread."""
    engine = _inline_engine()
    if engine is not None:
        try:
            with engine.connect() as connection:
                return read(connection)
        except sa.exc.OperationalError:
            pass  # busy: wait for it in a worker thread, off the event loop
    return await run_in_threadpool(_read_in_thread, read)


def _read_in_thread(read: Callable[[sa.Connection], Any]) -> Any:
    with get_engine().connect() as connection:
        return read(connection)


@lru_cache(maxsize=1)
def _sqlite_writer() -> ThreadPoolExecutor | None:
    """SQLite only: the one thread of this process that writes, else None.

    SQLite lets one writer in at a time; writers of one process queued here wait their turn
    instead of polling for the lock in its busy handler (which sleeps up to 100 ms between tries).
    """
    return ThreadPoolExecutor(1, "sqlite-writer") if _on_sqlite() else None


def _write_in_thread(write: Callable[[sa.Connection], Any]) -> Any:
    with get_engine().begin() as connection:
        return write(connection)


async def _off_the_loop(call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)` in a worker thread: writes may wait for locks (on SQLite, in its one writer thread)."""
    writer = _sqlite_writer()
    if writer is not None:
        return await asyncio.get_running_loop().run_in_executor(writer, call, *args)
    return await run_in_threadpool(call, *args)


async def _by_key(key: str, email: str, bad_request: ApiError | None, look_up: Callable[..., Any]) -> Any:
    """`look_up(connection, key, email)` in one read; an unknown key is refused (401) before a bad request (400)."""
    def read(connection: sa.Connection) -> Any:
        if bad_request is not None:
            if account_id_for_api_key(connection, key) is not None:
                raise bad_request
            return None
        return look_up(connection, key, email)

    found = await _read(read)
    if found is None:
        raise _unauthorized(_UNKNOWN_KEY_MESSAGE)
    return found


async def _check(key: str, email: str, bad_request: ApiError | None) -> JSONResponse:
    plan, licensed = await _by_key(key, email, bad_request, seats.check_by_api_key)
    return JSONResponse({"licensed": licensed, "plan": plan})


async def _activate(key: str, email: str, bad_request: ApiError | None) -> JSONResponse:
    look = await _by_key(key, email, bad_request, seats.look_by_api_key)
    # Already active: answered by the look. Otherwise the writes, in a worker thread.
    activation = look.answer or await _off_the_loop(
        _write_in_thread, lambda connection: seats.activate_looked_up(connection, look, actor=ACTOR)
    )
    body: dict[str, Any] = {
        "licensed": activation.licensed,
        "email": activation.email,
        "plan": activation.plan,
        "licenses_used": activation.licenses_used,
        "licenses_purchased": activation.licenses_purchased,
        "message": activation.message,
    }
    if activation.licensed:
        return JSONResponse({**body, "already_active": activation.outcome == Outcome.ALREADY_ACTIVE})
    return JSONResponse({**body, "error": activation.outcome.value}, _REFUSAL_STATUS[activation.outcome])


def _release_in_thread(key: str, email: str, bad_request: ApiError | None) -> JSONResponse:
    with session_scope() as session:
        account_id = account_id_for_api_key(session.connection(), key)
        if account_id is None:
            raise _unauthorized(_UNKNOWN_KEY_MESSAGE)
        if bad_request is not None:
            raise bad_request
        released = seats.release(session, account_id, email, actor=ACTOR)
    return JSONResponse({"released": released, "licensed": False})


async def _release(key: str, email: str, bad_request: ApiError | None) -> JSONResponse:
    return await _off_the_loop(_release_in_thread, key, email, bad_request)


Action = Callable[[str, str, "ApiError | None"], Awaitable[JSONResponse]]


def _route(path: str, method: str, read_email: Callable[[Request], Awaitable[str]], action: Action) -> Route:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            if request.method != method:
                # Answered here: otherwise the request would fall through to the page app's 404.
                raise ApiError(405, "method_not_allowed", f"Use {method}.", {"Allow": method})
            key = _bearer_key(request)
            try:
                email, bad_request = await read_email(request), None
            except ApiError as exc:
                # A wrong key is told so before anything about its request.
                email, bad_request = "", exc
            return await action(key, email, bad_request)
        except ApiError as exc:
            return exc.response()
        except InvalidEmail as exc:
            return ApiError(400, "invalid_email", str(exc)).response()
        except sa.exc.OperationalError:
            # e.g. SQLite busy past its timeout under a burst: nothing was written, the call can be repeated.
            return ApiError(503, "busy", "Try again in a moment.", {"Retry-After": "1"}).response()

    # Every method reaches the endpoint, which answers a wrong one itself.
    return Route(path, endpoint, methods=_ANY_METHOD)


routes = [
    _route("/api/v1/licenses/activate", "POST", _email_from_json, _activate),
    _route("/api/v1/licenses/check", "GET", _email_from_query, _check),
    _route("/api/v1/licenses/release", "POST", _email_from_json, _release),
]
