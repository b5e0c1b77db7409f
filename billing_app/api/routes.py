"""The app's own HTTP routes (mounted beside Reflex's pages and websocket on one port)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

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
