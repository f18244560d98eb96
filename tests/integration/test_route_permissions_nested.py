"""Every route declares exactly one permission, routers included through other routers too.

With the installed FastAPI, `app.routes` holds included routers as `_IncludedRouter` entries rather than the routes
themselves, so this walks them down to each APIRoute.
"""

from __future__ import annotations

from fastapi.routing import APIRoute

from allotment.api.app import create_app


def walk_routes(routes, prefix=""):
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix, route
        elif hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            yield from walk_routes(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))


def permissions_of(route: APIRoute) -> list:
    found = []

    def walk(dependant):
        for dep in dependant.dependencies:
            perm = getattr(dep.call, "permission", None)
            if perm is not None:
                found.append(perm)
            walk(dep)

    walk(route.dependant)
    return found


def test_every_nested_route_declares_exactly_one_permission(settings):
    app = create_app(settings, start_background=False)
    routes = list(walk_routes(app.routes))
    paths = {prefix + r.path for prefix, r in routes}
    assert "/api/v1/jobs" in paths and "/api/v1/clusters/{cluster}/resource-config/provision" in paths
    wrong = [f"{sorted(r.methods)} {prefix}{r.path}: {len(permissions_of(r))}" for prefix, r in routes
             if len(permissions_of(r)) != 1]
    assert wrong == []
