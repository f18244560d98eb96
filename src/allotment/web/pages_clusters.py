"""Clusters with their pools (Neu.ro's get-clusters, DKube's pools screen): what each principal may use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.api.deps import DB, require
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.web import service
from allotment.web.console import render

router = APIRouter()


@router.get("/ui/clusters")
def clusters_page(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> Response:
    return render(request, "clusters.html", {"clusters": service.clusters_with_pools(db, principal)})
