"""Every route declares the permission it needs; a route added without one fails here."""

from __future__ import annotations

from app_routes import api_routes

from allotment.api.app import create_app


def declared_permissions(dependant) -> list:
    found = []

    def walk(d):
        for dep in d.dependencies:
            perm = getattr(dep.call, "permission", None)
            if perm is not None:
                found.append(perm)
            walk(dep)

    walk(dependant)
    return found


def test_every_route_declares_exactly_one_permission(settings):
    app = create_app(settings, start_background=False)
    missing, doubled = [], []
    for route in api_routes(app):
        perms = declared_permissions(route.dependant)
        if not perms:
            missing.append(f"{sorted(route.methods)} {route.path}")
        elif len(perms) > 1:
            doubled.append(f"{sorted(route.methods)} {route.path}")
    assert missing == [], f"routes without a declared permission: {missing}"
    assert doubled == [], f"routes declaring more than one permission: {doubled}"
