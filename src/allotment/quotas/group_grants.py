"""What a group is granted in the quotas domain: quota bindings (DKube group -> pool, ClearML user group -> policy)
and workspace memberships (PAI). Identity lists them before deleting a group, and revokes them with it."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from allotment.inventory.models import Cluster
from allotment.quotas.models import Quota, QuotaBinding
from allotment.workspaces import service as workspaces


def granted_to_group(session: Session, group_id: int) -> dict[str, list[str]]:
    """{"quotas": ["Dev (cluster local)", ...], "workspaces": ["ws (cluster local)", ...]}, sorted."""
    quotas = session.execute(select(Quota.name, Cluster.name).join(QuotaBinding, QuotaBinding.quota_id == Quota.id)
                             .join(Cluster, Cluster.id == Quota.cluster_id)
                             .where(QuotaBinding.group_id == group_id).order_by(Quota.name)).all()
    held = workspaces.workspaces_of_group(session, group_id)
    clusters = dict(session.execute(select(Cluster.id, Cluster.name)
                                    .where(Cluster.id.in_({c for _, c in held}))).all())
    return {"quotas": [f"{q} (cluster {c})" for q, c in quotas],
            "workspaces": [f"{w} (cluster {clusters[c]})" for w, c in held]}


def revoke_group(session: Session, group_id: int) -> None:
    """Remove the group's quota bindings and workspace memberships; what its members hold directly stays."""
    session.execute(delete(QuotaBinding).where(QuotaBinding.group_id == group_id))
    workspaces.remove_group_everywhere(session, group_id)
