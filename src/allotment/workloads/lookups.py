"""What submission reads of the database, cached for one call: a batch of thousands of jobs costs a few queries per
distinct quota, profile or pool, not per job (workloads/service.py checks the jobs against them)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, String, Text, bindparam, cast, func, select
from sqlalchemy.orm import Session

from allotment.core import access
from allotment.core.names import as_id
from allotment.core.permissions import Principal, resource_refusal, submit_refusal
from allotment.errors import FieldError
from allotment.inventory.models import Cluster, Pool
from allotment.policies import service as policies
from allotment.policies.models import ResourcePolicy
from allotment.quotas import bindings
from allotment.quotas.models import PriorityClass, Profile, ProfilePool, Quota
from allotment.quotas.priorities import default_class
from allotment.quotas.quota_pools import usable_pools
from allotment.workloads.requests import parse_request
from allotment.workloads.shape import ClusterFacts


class QuotaFacts(NamedTuple):
    """What submission reads of a quota (a plain row: a batch names hundreds of quotas, and an ORM object each
    cost more than the checks themselves)."""

    id: int
    name: str
    cluster_id: int
    allowed_priority_classes: list[str] | None


# The allowed classes as their JSON text (mostly 'null'), decoded only where a quota has a list. A cast, not a coercion
# in Python alone: psycopg decodes a json column itself, for every quota of every batch (42,000 decodings at 50,000
# jobs of the large-scale benchmark).
_QUOTA_FACTS = (Quota.id, Quota.name, Quota.cluster_id,
                cast(Quota.allowed_priority_classes, Text).label("allowed_priority_classes"))


# Statements built once (a batch's fixed cost is mostly building, keying and running its handful of look-ups): the
# quotas a batch names, sent as one parameter (a list of hundreds of parameters cost more to render and parse than
# the rows to read): a PostgreSQL array, or a JSON array that SQLite opens with json_each. On PostgreSQL the array is
# unnested into a set the planner hashes: `name = ANY(array)` compared each quota with every name (collated string
# comparisons, about 5 ms for a batch naming 400 of 1,000 quotas, against 1 ms).
# On PostgreSQL the quotas read are also locked against deletion until the batch commits, as the jobs' references
# need (references.py): here, in the read that finds them, instead of a statement of its own sending their ids again.
_QUOTAS_NAMED = {
    "postgresql": select(*_QUOTA_FACTS).where(Quota.name.in_(
        select(func.unnest(bindparam("names", type_=ARRAY(String)))))).with_for_update(read=True, key_share=True,
                                                                                      of=Quota),
    "sqlite": select(*_QUOTA_FACTS).where(Quota.name.in_(select(func.json_each(bindparam("names")).table_valued(
        "value").c.value))),
}
_CLASSES = select(PriorityClass.name, PriorityClass.value)  # rows with .name and .value, as the checks read them
_CLUSTER_NAMES = select(Cluster.id, Cluster.name)


def _facts(row) -> QuotaFacts:
    allowed = row[3]
    if isinstance(allowed, str):
        allowed = None if allowed == "null" else json.loads(allowed)
    return QuotaFacts(row[0], row[1], row[2], allowed)


class Lookups:
    """Per-call caches so a batch of thousands of jobs costs a few queries per distinct quota, not per job."""

    def __init__(self, session: Session, principal: Principal):
        self.session = session
        self.principal = principal
        self.quotas: dict[str, QuotaFacts | None] = {}
        self.held_quotas: set[int] = set()  # quotas read and locked by prefetch_quotas (references.hold skips them)
        self.may_submit: dict[int, str | None] = {}  # quota id -> why the principal may not submit
        self.bound_ids: set[int] | None = None  # quotas bound to the principal (bindings.py; None: every quota)
        self._bound_read = False
        self.cluster_names: dict[int, str] = {}
        self.rules: access.RuleIndex | None = None  # the access rules on quotas
        self.classes = {c.name: c for c in session.execute(_CLASSES)}
        self._default_class: tuple[str | None] | None = None  # read when a job names no class
        self.profiles: dict[tuple[int, str], Profile | None] = {}
        self.profile_pools: dict[int, list[int]] = {}
        self.pools: dict[tuple[int, str], Pool | None] = {}
        self.usable: dict[int, dict[int, frozenset[str] | None]] = {}  # cluster -> quota -> usable pools
        self.pool_names: dict[int, str] = {}
        self.projects: dict[tuple[int, str], tuple[int | None, str | None, str | None]] = {}
        self.clusters = ClusterFacts(session)  # minimum GPU share and pools by GPU model (shape.py)
        self.amounts: dict[tuple[str, type, Any], tuple[int, str | None]] = {}
        self.caps: dict[tuple[int, int, int], list[FieldError]] = {}
        self.commands: dict[tuple[str, ...], list[str]] = {}
        self.built: dict[tuple, dict[str, Any]] = {}  # shape key -> the row of a job that passed (service._build)
        self.places: dict[int, tuple | None] = {}  # quota id -> place (see place)

    @property
    def default_class(self) -> str | None:
        """The class of jobs that name none (quotas/priorities.py), read once, and only if a job names none."""
        if self._default_class is None:
            fallback = default_class(self.session)
            self._default_class = (fallback.name if fallback else None,)
        return self._default_class[0]

    def command(self, argv: list[str]) -> list[str]:
        """One list for the jobs of a batch that run the same command, so that the INSERT encodes it once
        (batch_insert.py converts a value that is the previous row's object once)."""
        return self.commands.setdefault(tuple(argv), argv)

    def amount(self, resource: str, value: Any) -> tuple[int, str | None]:
        """parse_request once per distinct value (a batch asks for a handful of shapes); the type is part of the key
        because True == 1 and 1 == 1.0 in a dict."""
        if not isinstance(value, str | int | float | None):
            return parse_request(resource, value, resource)
        key = (resource, type(value), value)
        if key not in self.amounts:
            self.amounts[key] = parse_request(resource, value, resource)
        return self.amounts[key]

    def cap_problems(self, policy: ResourcePolicy, amounts: dict[str, int], prefix: str) -> list[FieldError]:
        """The owner's per-job caps (policies.check_job), once per distinct shape, with this job's field names."""
        key = (amounts["gpu"], amounts["cpu"], amounts["memory"])
        if key not in self.caps:
            self.caps[key] = policies.check_job(policy, *key)
        found = self.caps[key]
        return [FieldError(prefix + e.field, e.message) for e in found] if found else found

    def usable_pools(self, quota: QuotaFacts) -> frozenset[str] | None:
        """The pools jobs of the quota may use (None: every pool), one query set per cluster."""
        known = self.usable.setdefault(quota.cluster_id, {})
        if quota.id not in known:  # for the quotas of the batch in that cluster, read once (prefetch_quotas)
            wanted = {q.id for q in self.quotas.values() if q is not None and q.cluster_id == quota.cluster_id}
            known.update(usable_pools(self.session, [quota.cluster_id], wanted | {quota.id}))
        return known.get(quota.id)

    def project(self, cluster_id: int, ref: str | int) -> tuple[int | None, str | None, str | None]:
        """(project id, problem, message) for a job's project (projects.access decides), once per reference."""
        key = (cluster_id, str(ref).strip())
        if key not in self.projects:
            from allotment.projects.access import project_for_job  # projects depends on workloads' models

            self.projects[key] = project_for_job(self.session, self.principal, cluster_id, ref)
        return self.projects[key]

    def linked_pool_names(self, profile_id: int) -> list[str]:
        ids = self.linked_pools(profile_id)
        missing = [i for i in ids if i not in self.pool_names]
        if missing:
            self.pool_names.update(self.session.execute(select(Pool.id, Pool.name).where(Pool.id.in_(missing))).all())
        return [self.pool_names[i] for i in ids]

    def prefetch_quotas(self, names: set[str]) -> None:
        """One query for every quota a batch names, the names sent as one parameter (a list of hundreds of
        parameters cost more to render and parse than the rows to read): a PostgreSQL array, a JSON array that
        SQLite opens with json_each."""
        wanted = [n for n in names if n and n not in self.quotas]
        if not wanted:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            statement, names = _QUOTAS_NAMED["postgresql"], wanted
        else:
            statement, names = _QUOTAS_NAMED["sqlite"], json.dumps(wanted)
        for row in self.session.execute(statement, {"names": names}):
            self.quotas[row.name] = _facts(row)
            self.held_quotas.add(row.id)

    def place(self, quota: QuotaFacts) -> tuple | None:
        """What the checks of a job read of its quota but its id and name: (cluster, allowed priority classes,
        usable pools); None when the principal may not submit to it. Quotas with the same place pass or fail a job
        of a given shape alike (service._shape_key)."""
        if quota.id not in self.places:
            allowed = quota.allowed_priority_classes
            self.places[quota.id] = None if self.refusal(quota) is not None else (
                quota.cluster_id, None if allowed is None else tuple(allowed), self.usable_pools(quota))
        return self.places[quota.id]

    def quota(self, name: str) -> QuotaFacts | None:
        if name not in self.quotas:
            found = self.session.execute(select(*_QUOTA_FACTS).where(Quota.name == name)).first()
            if found is None and as_id(name):
                found = self.session.execute(select(*_QUOTA_FACTS).where(Quota.id == as_id(name))).first()
            self.quotas[name] = _facts(found) if found is not None else None
        return self.quotas[name]

    def refusal(self, quota: QuotaFacts) -> str | None:
        """Why the principal may not submit to the quota (core.permissions.submit_refusal decides); None if it may.
        The quotas bound to the principal are read once per call, whatever the number of quotas a batch names (a
        batch of 500 jobs may name 500 quotas: a look-up per quota was most of its cost)."""
        if quota.id not in self.may_submit:
            if not self._bound_read:
                self.bound_ids = bindings.submittable_quota_ids(self.session, self.principal)
                self._bound_read = True
            bound = self.bound_ids is None or quota.id in self.bound_ids
            refused = submit_refusal(self.principal, quota.cluster_id, self.cluster_name(quota.cluster_id),
                                     quota.name, bound)
            if refused is None:  # ClearML: enqueueing needs read and modify on the queue under its access rules
                why = resource_refusal(self.principal, self.quota_rules(quota), access.Resource("quota", quota.id),
                                       "modify", access.MODIFY, f"quota {quota.name}", cluster_id=quota.cluster_id)
                refused = f"you may not submit to quota {quota.name}: {why}" if why else None
            self.may_submit[quota.id] = refused
        return self.may_submit[quota.id]

    def quota_rules(self, quota: QuotaFacts) -> access.RuleIndex:
        """The access rules that can cover quotas, read once for all the quotas a batch names (a quota has no
        workspace, so its default is MODIFY; access.service.refusal reads the same rules for one quota)."""
        if self.rules is None:
            from allotment.access import service as access_rules  # access imports workloads

            self.rules = access_rules.index_for_type(self.session, "quota")
        return self.rules

    def cluster_name(self, cluster_id: int) -> str:
        if cluster_id not in self.cluster_names:
            self.cluster_names.update(self.session.execute(_CLUSTER_NAMES).all())
        return self.cluster_names.get(cluster_id, "")

    def profile(self, cluster_id: int, name: str) -> Profile | None:
        k = (cluster_id, name)
        if k not in self.profiles:
            self.profiles[k] = self.session.scalar(select(Profile).where(Profile.cluster_id == cluster_id,
                                                                         Profile.name == name))
        return self.profiles[k]

    def linked_pools(self, profile_id: int) -> list[int]:
        if profile_id not in self.profile_pools:
            self.profile_pools[profile_id] = list(self.session.scalars(
                select(ProfilePool.pool_id).where(ProfilePool.profile_id == profile_id)).all())
        return self.profile_pools[profile_id]

    def pool(self, cluster_id: int, name: str) -> Pool | None:
        k = (cluster_id, name)
        if k not in self.pools:
            self.pools[k] = self.session.scalar(select(Pool).where(Pool.cluster_id == cluster_id, Pool.name == name))
        return self.pools[k]


