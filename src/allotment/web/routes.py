"""The web console: server-rendered pages (Jinja2 + htmx) served by the API's app at / and /ui/.

`router` holds every console route; `mount(app)` adds it with the static files and the HTML error pages. Each page
module below declares its permission with `require(...)`, exactly like the API routes.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from allotment.web import errors
from allotment.web.console import check_csrf

log = logging.getLogger("allotment.web")

STATIC_DIR = Path(__file__).parent / "static"
# The source checkout's node_modules (src/allotment/web/routes.py -> repository root).
DEFAULT_VENDOR_DIR = Path(__file__).resolve().parents[3] / "node_modules"
REQUIRED_VENDOR_FILES = ["htmx.org/dist/htmx.min.js", "@picocss/pico/css/pico.min.css"]

# One module per subject; each exposes `router`.
# pages_cluster_settings before pages_clusters: its /ui/clusters/new must not be taken for a cluster named "new".
PAGES = ["pages_auth", "pages_dashboard", "pages_jobs", "pages_quotas", "pages_cluster_settings", "pages_clusters",
         "pages_cluster_members", "pages_users", "pages_groups", "pages_credentials", "pages_account", "pages_service_accounts", "pages_audit",
         "pages_policies", "pages_usage", "pages_simulation", "pages_federation", "pages_scim", "pages_workspaces",
         "pages_projects", "pages_folders", "pages_vaults", "pages_storage_targets", "pages_hide_list",
         "pages_access", "pages_storage_hosts"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
for _name in PAGES:
    router.include_router(importlib.import_module(f"allotment.web.{_name}").router)


def mount(app: FastAPI) -> None:
    state = app.state.allot
    vendor = state.settings.vendor_dir or DEFAULT_VENDOR_DIR
    missing = [f for f in REQUIRED_VENDOR_FILES if not (vendor / f).is_file()]
    if missing:
        log.warning("console assets missing under %s (%s): pages will render without styles and scripts; "
                    "run `npm ci` in the repository (make install does)", vendor, ", ".join(missing))
    else:
        app.mount("/static/vendor", StaticFiles(directory=vendor), name="console-vendor")
    state.extras["console_vendor"] = not missing
    app.mount("/static/console", StaticFiles(directory=STATIC_DIR), name="console-static")
    errors.install(app)
    app.include_router(router)
