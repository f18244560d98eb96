"""Quotas (PAI's quota tree, Kueue's cluster queues): per cluster, the tree with each quota's guarantee, limit and
what its subtree holds now. Any signed-in principal may read quotas, as in the API; changes stay in the API/CLI."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotment.accounting import budgets
from allotment.api.deps import DB, require
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.inventory import service as inventory
from allotment.quotas import service as quotas
from allotment.quotas.routes import quota_out
from allotment.web.console import render

router = APIRouter()


def tree_order(items: list) -> list[tuple[int, object]]:
    """(depth, quota) pairs, parents before their children, siblings by name."""
    kids: dict[int | None, list] = {}
    for q in items:
        kids.setdefault(q.parent_id, []).append(q)
    ids = {q.id for q in items}
    out: list[tuple[int, object]] = []

    def walk(quota, depth: int) -> None:
        out.append((depth, quota))
        for child in sorted(kids.get(quota.id, []), key=lambda q: q.name):
            walk(child, depth + 1)

    for root in sorted((q for q in items if q.parent_id not in ids), key=lambda q: q.name):
        walk(root, 0)
    return out


@router.get("/ui/quotas")
def quotas_page(request: Request, principal: Annotated[Principal, require(AUTHENTICATED)], db: DB) -> Response:
    visible = inventory.visible_clusters(db, None if principal.is_platform_admin else set(principal.cluster_roles))
    clusters, now = [], time.time()
    for cluster in visible:
        rows = [{"depth": depth, "quota": quota_out(db, q, principal=principal),
                 "budgets": budgets.quota_budgets(db, q, now)}
                for depth, q in tree_order(quotas.list_quotas(db, cluster.id))]
        clusters.append({"cluster": cluster, "rows": rows})
    return render(request, "quotas.html", {"clusters": clusters})
