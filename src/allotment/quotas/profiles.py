"""ClearML resource profiles: a per-job allotment, ordered named links to pools (the profile's pool precedence, or an
unordered set of acceptable pools when the profile is marked unordered: best fit across them), the pool's execution
order of the profiles linked to it, and the profile's queuing order of the policies (quotas) that use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.core.names import as_id
from allotment.core.quantity import format_raw, parse_quantity
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.inventory.models import Pool
from allotment.inventory.service import bump_config_version, check_name
from allotment.quotas.models import Profile, ProfilePolicy, ProfilePool, Quota
from allotment.workloads.models import ACTIVE_STATES, Job


@dataclass
class PoolLink:
    pool: str
    name: str | None = None


def find_profile(session: Session, cluster_id: int, ref: str | int) -> Profile:
    text = str(ref).strip()
    found = session.scalar(select(Profile).where(Profile.cluster_id == cluster_id, Profile.name == text))
    if found is None and as_id(text):
        found = session.scalar(select(Profile).where(Profile.cluster_id == cluster_id, Profile.id == as_id(text)))
    if found is None:
        raise NotFound(f"no profile '{text}' in this cluster")
    return found


def list_profiles(session: Session, cluster_id: int) -> list[Profile]:
    return list(session.scalars(select(Profile).where(Profile.cluster_id == cluster_id).order_by(Profile.name)).all())


def profile_links(session: Session, profile_id: int) -> list[tuple[ProfilePool, str]]:
    """The profile's pool links in precedence order, with pool names."""
    return list(session.execute(select(ProfilePool, Pool.name).join(Pool, Pool.id == ProfilePool.pool_id)
                                .where(ProfilePool.profile_id == profile_id)
                                .order_by(ProfilePool.position, ProfilePool.id)).all())


def profile_policies(session: Session, profile_id: int) -> list[str]:
    return list(session.scalars(select(Quota.name).join(ProfilePolicy, ProfilePolicy.quota_id == Quota.id)
                                .where(ProfilePolicy.profile_id == profile_id)
                                .order_by(ProfilePolicy.position, ProfilePolicy.id)).all())


def pool_profile_order(session: Session, pool_id: int) -> list[str]:
    return list(session.scalars(select(Profile.name).join(ProfilePool, ProfilePool.profile_id == Profile.id)
                                .where(ProfilePool.pool_id == pool_id)
                                .order_by(ProfilePool.pool_position, ProfilePool.id)).all())


def parse_allotment(gpu, cpu, memory) -> tuple[int, int, int]:
    errors: list[FieldError] = []
    out = []
    for field_name, value in (("gpu", gpu), ("cpu", cpu), ("memory", memory)):
        try:
            quantity = parse_quantity(value if value is not None else 0, field_name)
        except ValueError as exc:
            errors.append(FieldError(field_name, str(exc)))
            out.append(0)
            continue
        if quantity.is_unlimited:
            errors.append(FieldError(field_name, "a per-job allotment cannot be unlimited"))
            out.append(0)
            continue
        out.append(quantity.raw)
    gpu_raw = out[0]
    if not errors and gpu_raw:
        from allotment.workloads.requests import gpu_problem

        problem = gpu_problem(gpu_raw)
        if problem:
            errors.append(FieldError("gpu", problem))
    if not errors and not any(out):
        errors.append(FieldError("gpu", "a profile allots at least some gpu, cpu or memory"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return out[0], out[1], out[2]


def create_profile(session: Session, cluster_id: int, name: str, gpu, cpu=None, memory=None,
                   description: str | None = None, pools: Sequence[PoolLink] = (), unordered: bool = False) -> Profile:
    name = check_name("name", name)
    if session.scalar(select(Profile.id).where(Profile.cluster_id == cluster_id, Profile.name == name)):
        raise Conflict(f"a profile named {name} already exists in this cluster")
    gpu_raw, cpu_raw, memory_raw = parse_allotment(gpu, cpu, memory)
    profile = Profile(cluster_id=cluster_id, name=name, description=description, gpu_milli=gpu_raw,
                      cpu_milli=cpu_raw, memory_bytes=memory_raw, unordered=bool(unordered))
    session.add(profile)
    session.flush()
    if pools:
        set_pools(session, profile, pools)
    bump_config_version(session, cluster_id)
    return profile


def update_profile(session: Session, profile: Profile, name: str | None = None, gpu=None, cpu=None, memory=None,
                   description: str | None = None, unordered: bool | None = None) -> Profile:
    """A new allotment applies to jobs submitted afterwards (queued jobs keep the amounts they were given); marking
    it unordered or ordered applies to its queued jobs too."""
    if name is not None:
        name = check_name("name", name)
        other = session.scalar(select(Profile.id).where(Profile.cluster_id == profile.cluster_id,
                                                        Profile.name == name))
        if other is not None and other != profile.id:
            raise Conflict(f"a profile named {name} already exists in this cluster")
        profile.name = name
    if any(v is not None for v in (gpu, cpu, memory)):
        profile.gpu_milli, profile.cpu_milli, profile.memory_bytes = parse_allotment(
            gpu if gpu is not None else format_raw(profile.gpu_milli, "gpu"),
            cpu if cpu is not None else format_raw(profile.cpu_milli, "cpu"),
            memory if memory is not None else format_raw(profile.memory_bytes, "memory"))
    if description is not None:
        profile.description = description
    if unordered is not None:
        profile.unordered = bool(unordered)
    session.flush()
    bump_config_version(session, profile.cluster_id)
    return profile


def delete_profile(session: Session, profile: Profile) -> None:
    active = session.scalar(select(func.count()).select_from(Job)
                            .where(Job.profile_id == profile.id, Job.state.in_(ACTIVE_STATES)))
    if active:
        raise Conflict(f"profile {profile.name} is used by {active} queued or running jobs")
    cluster_id = profile.cluster_id
    session.delete(profile)
    session.flush()
    bump_config_version(session, cluster_id)


def set_pools(session: Session, profile: Profile, links: Sequence[PoolLink]) -> None:
    """Replace the profile's pool links; their order is the order pools are tried. A new link goes last in the
    pool's execution order; kept links keep their place there."""
    errors: list[FieldError] = []
    pools: list[tuple[Pool, str | None]] = []
    for i, link in enumerate(links):
        pool = session.scalar(select(Pool).where(Pool.cluster_id == profile.cluster_id, Pool.name == link.pool))
        if pool is None:
            errors.append(FieldError(f"pools.{i}.pool", f"no pool '{link.pool}' in the profile's cluster"))
        elif any(p.id == pool.id for p, _ in pools):
            errors.append(FieldError(f"pools.{i}.pool", f"pool {link.pool} is linked twice"))
        else:
            pools.append((pool, link.name))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    existing = {link.pool_id: link for link, _ in profile_links(session, profile.id)}
    wanted = {pool.id for pool, _ in pools}
    for pool_id, link in existing.items():
        if pool_id not in wanted:
            session.delete(link)
    for position, (pool, link_name) in enumerate(pools):
        link = existing.get(pool.id)
        if link is None:
            last = session.scalar(select(func.max(ProfilePool.pool_position)).where(ProfilePool.pool_id == pool.id))
            link = ProfilePool(profile_id=profile.id, pool_id=pool.id, pool_position=(last or 0) + 1)
            session.add(link)
        link.position = position
        link.name = link_name or f"{profile.name} on {pool.name}"
    session.flush()
    bump_config_version(session, profile.cluster_id)


def set_pool_profile_order(session: Session, pool: Pool, profile_names: Sequence[str]) -> None:
    """The pool's execution priority: the profiles linked to it, first served first. Must name each linked profile
    exactly once."""
    links = {name: link for link, name in session.execute(
        select(ProfilePool, Profile.name).join(Profile, Profile.id == ProfilePool.profile_id)
        .where(ProfilePool.pool_id == pool.id)).all()}
    if sorted(profile_names) != sorted(links) or len(set(profile_names)) != len(profile_names):
        raise invalid("profiles", f"list each profile linked to pool {pool.name} once: "
                                  f"{', '.join(sorted(links)) or 'none are linked'}")
    for position, name in enumerate(profile_names):
        links[name].pool_position = position
    session.flush()
    bump_config_version(session, pool.cluster_id)


def set_policy_order(session: Session, profile: Profile, quota_names: Sequence[str]) -> None:
    """The profile's queuing priority over the quotas (ClearML policies) using it: first listed served first.
    Replaces the list."""
    errors: list[FieldError] = []
    ids = []
    for i, name in enumerate(quota_names):
        quota = session.scalar(select(Quota).where(Quota.name == name))
        if quota is None or quota.cluster_id != profile.cluster_id:
            errors.append(FieldError(f"policies.{i}", f"no quota '{name}' in the profile's cluster"))
        elif quota.id in ids:
            errors.append(FieldError(f"policies.{i}", f"quota {name} is listed twice"))
        else:
            ids.append(quota.id)
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    for old in session.scalars(select(ProfilePolicy).where(ProfilePolicy.profile_id == profile.id)).all():
        session.delete(old)
    session.flush()
    for position, quota_id in enumerate(ids):
        session.add(ProfilePolicy(profile_id=profile.id, quota_id=quota_id, position=position))
    session.flush()
    bump_config_version(session, profile.cluster_id)
