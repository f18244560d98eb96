"""About (DKube's About): this server's version, the execution engines with their versions and the clusters on
each, the database kind, and the console's assets. Everyone signed in may read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment import __version__
from allotment.api.deps import DB, require
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.web import about
from allotment.web.console import render
from allotment.web.pages_clusters import clusters_for

router = APIRouter()


@router.get("/ui/about")
def about_page(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> Response:
    from allotment.web.routes import DEFAULT_VENDOR_DIR  # routes imports this module

    clusters = clusters_for(db, principal)
    versions = about.engine_versions()
    engines = [{"name": name, "what": what, "version": versions[name],
                "clusters": [c for c in clusters if c["backend"] == name]} for name, what in about.ENGINES.items()]
    vendor = request.app.state.allot.settings.vendor_dir or DEFAULT_VENDOR_DIR
    return render(request, "about.html", {
        "server_version": __version__, "engines": engines, "database": about.database(db),
        "packages": about.console_packages(vendor),
    })
