"""The app's own HTTP routes (mounted beside Reflex's pages and websocket on one port)."""

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from billing_app.errors import UserError


class ApiError(UserError):
    """A refusal with its own HTTP status (and headers, e.g. `WWW-Authenticate`)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, code)
        self.status, self.headers = status, headers


async def user_error_response(_request: Request, exc: Exception) -> JSONResponse:
    """Any UserError a route raises: `{"error": code, "message": …}`, 400 unless it says another
    status (the one place the API turns refusals into responses)."""
    assert isinstance(exc, UserError)  # registered for UserError only
    status, headers = (exc.status, exc.headers) if isinstance(exc, ApiError) else (400, None)
    return JSONResponse({"error": exc.code, "message": exc.message}, status, headers=headers)


def build_api(*route_groups: list[BaseRoute]) -> Starlette:
    return Starlette(
        routes=[route for group in route_groups for route in group],
        exception_handlers={UserError: user_error_response},
    )


API_PREFIX = "/api/"


def in_front_of_reflex(api: Starlette) -> Callable[[ASGIApp], ASGIApp]:
    """Reflex's app transformed so that HTTP requests under /api/ go to `api` (our routes), all
    others to Reflex. A plain dispatch rather than the Starlette instance itself as the transformer:
    Reflex would mount its app inside it and add a second CORS layer (its top app has one) to every
    request, the license check's included."""

    def wrap(reflex_app: ASGIApp) -> ASGIApp:
        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
                await api(scope, receive, send)
            else:
                await reflex_app(scope, receive, send)

        return dispatch

    return wrap
