"""Clusters and pools: lookup and the defaults a fresh installation gets."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.errors import NotFound
from allotment.inventory.models import Cluster, Pool

DEFAULT_POOL = "default"


def find_cluster(session: Session, ref: str | int) -> Cluster:
    text = str(ref).strip()
    cluster = session.get(Cluster, int(text)) if text.isdigit() else None
    cluster = cluster or session.scalar(select(Cluster).where(Cluster.name == text))
    if cluster is None:
        raise NotFound(f"no cluster '{text}'")
    return cluster


def find_cluster_id(session: Session, ref: str | int) -> int:
    return find_cluster(session, ref).id


def create_cluster(session: Session, name: str, backend: str = "local", created_by_id: int | None = None) -> Cluster:
    cluster = Cluster(name=name, backend=backend, created_by_id=created_by_id)
    session.add(cluster)
    session.flush()
    session.add(Pool(cluster_id=cluster.id, name=DEFAULT_POOL, is_default=True))
    session.flush()
    return cluster
