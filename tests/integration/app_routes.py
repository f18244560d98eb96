"""Every API route of an app with its full path and effective dependencies.

FastAPI (0.16x) keeps included routers as `_IncludedRouter` entries in `app.routes` instead of flattening them, so
`isinstance(route, APIRoute)` over `app.routes` alone sees only the routes declared on the app itself.
`fastapi.routing.iter_route_contexts` expands the included routers, with their prefixes and router-level dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


@dataclass(frozen=True)
class ApiRoute:
    path: str
    methods: frozenset[str]
    dependant: Any


def api_routes(app: FastAPI) -> list[ApiRoute]:
    from fastapi import routing

    if hasattr(routing, "iter_route_contexts"):
        found = [ApiRoute(c.path, frozenset(c.methods or ()), c.dependant)
                 for c in routing.iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]
    else:  # FastAPI versions that flatten included routers
        found = [ApiRoute(r.path, frozenset(r.methods), r.dependant) for r in app.routes if isinstance(r, APIRoute)]
    assert any(r.path.startswith("/api/v1/") for r in found), "found no /api/v1 routes: the enumeration is broken"
    return found
