"""The dashboard: a snapshot of the platform for admins (DKube's operator dashboard: GPUs allocated and free per pool,
utilisation, the longest waits, unhealthy nodes), of one's own use and clusters otherwise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.api.deps import DB, require
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.db import utcnow
from allotment.web import pages_about, service
from allotment.web.console import render
from allotment.web.pages_clusters import clusters_for
from allotment.web.pages_workspaces import pending_invitation_count

router = APIRouter()
router.include_router(pages_about.router)  # the About page, linked from every page's sidebar


@router.get("/ui/")
@router.get("/ui")
def dashboard(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> Response:
    now = utcnow()
    if principal.is_platform_admin:
        tiles = service.platform_counts(db, now)
        events = service.recent_events(db)
    else:
        tiles, events = service.own_counts(db, principal, now), []
    cluster_ids = None if principal.is_platform_admin else set(principal.cluster_roles)
    return render(request, "dashboard.html", {
        "tiles": tiles, "events": events, "clusters": clusters_for(db, principal),
        "jobs": service.jobs_by_state(db, principal), "pools": service.pool_gpus(db, cluster_ids),
        "waits": service.longest_waits(db, principal, now),
        "unhealthy": service.unhealthy_nodes(db, cluster_ids) if principal.is_platform_admin else [],
        "workspace_invitations": pending_invitation_count(db, principal),
    })
