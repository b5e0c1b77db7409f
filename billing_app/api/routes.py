"""The app's own HTTP routes (mounted beside Reflex's pages and websocket on one port)."""

from starlette.applications import Starlette
from starlette.routing import BaseRoute


def build_api(*route_groups: list[BaseRoute]) -> Starlette:
    return Starlette(routes=[route for group in route_groups for route in group])
