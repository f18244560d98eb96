"""The quota of a job submitted without one (DKube's single user out of the box).

`--quota` may be omitted when the principal may submit to exactly one quota, or else to the cluster's default quota
(the quota named `default`, which the first start creates over the default cluster's default pool and binds to
everyone with access to that cluster). Otherwise the submission is refused, naming the quotas to choose from.
"May submit" is the same decision as for a named quota (core.permissions.submit_refusal: a binding, or a cluster
admin's role, and access to the quota's cluster).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core.permissions import Principal, submit_refusal
from allotment.errors import DomainError, FieldError, ValidationFailed
from allotment.inventory.models import Cluster
from allotment.quotas import bindings
from allotment.quotas.models import Quota

DEFAULT_QUOTA = "default"
SHOWN = 20  # quotas named in the refusal; the rest are counted


def submittable(session: Session, principal: Principal) -> list[tuple[str, str]]:
    """(quota, cluster) of every quota the principal may submit to, by cluster then quota name."""
    ids = bindings.submittable_quota_ids(session, principal)  # None: a platform admin, every quota
    query = select(Quota.name, Quota.cluster_id, Cluster.name).join(Cluster, Cluster.id == Quota.cluster_id)
    if ids is not None:
        query = query.where(Quota.id.in_(ids))
    rows = session.execute(query.order_by(Cluster.name, Quota.name)).all()
    return [(quota, cluster) for quota, cluster_id, cluster in rows
            if submit_refusal(principal, cluster_id, cluster, quota, True) is None]


class NoQuotaToSubmitTo(DomainError):
    """The caller may submit to no quota at all: forbidden (403), as a named quota they may not use would be."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", [FieldError(field, message)], 403, "Forbidden", "forbidden")


def default_quota(session: Session, principal: Principal, field: str = "quota") -> str:
    """The quota a job without one goes to; ValidationFailed naming the choices when there are several,
    NoQuotaToSubmitTo when there is none."""
    choices = submittable(session, principal)
    if len(choices) == 1:
        return choices[0][0]
    if any(quota == DEFAULT_QUOTA for quota, _ in choices):
        return DEFAULT_QUOTA
    if not choices:
        raise NoQuotaToSubmitTo(field, "you may not submit to any quota: ask an administrator of a cluster to add "
                                       "you to it and bind a quota to you")
    shown = ", ".join(f"{quota} (cluster {cluster})" for quota, cluster in choices[:SHOWN])
    more = f" and {len(choices) - SHOWN} more (allot quotas list)" if len(choices) > SHOWN else ""
    message = f"is required: you may submit to {len(choices)} quotas, choose one of {shown}{more}"
    raise ValidationFailed(f"{field}: {message}", [FieldError(field, message)])
