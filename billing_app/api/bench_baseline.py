"""`GET /api/bench/baseline`: a bare Starlette JSON endpoint, mounted only when
`BILLING_BENCH_BASELINE=1` (set by `make bench`, never by `make run`).

The license API benchmark loads it as its baseline: the same server process, ASGI stack and
middleware as the license API, without authentication, a worker thread or the database.
"""

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

PATH = "/api/bench/baseline"


async def _baseline(_request: Request) -> JSONResponse:
    return JSONResponse({"licensed": True, "plan": "unlimited"})


def routes(enabled: bool) -> list[BaseRoute]:
    return [Route(PATH, _baseline, methods=["GET"])] if enabled else []
