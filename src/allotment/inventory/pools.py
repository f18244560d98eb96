"""Pools (DKube): every device in exactly one pool, the default pool holds what is unassigned, a pool holds one GPU
model, a pool whose devices run a job cannot be deleted, and a deleted pool's devices return to the default pool.
Deleting a pool never changes what a waiting job or a profile means: it is refused while queued (or preempted) jobs
are pinned to it, and while a profile is linked to no other pool."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from allotment.core.limits import MAX_DEVICE_INDEX
from allotment.core.names import as_id, is_digits
from allotment.errors import Conflict, FieldError, NotFound, ValidationFailed, invalid
from allotment.inventory.machines import Layout, layout
from allotment.inventory.models import Device, Node, Pool
from allotment.inventory.service import bump_config_version, check_name, default_pool
from allotment.quotas.models import Profile, ProfilePool
from allotment.quotas.quota_pools import quotas_only_in
from allotment.workloads import references
from allotment.workloads.models import HOLDING_STATES, PREEMPTED, QUEUED, Job

LISTED = 10  # how many job ids or profile names a refusal names


def find_pool(session: Session, cluster_id: int, ref: str | int) -> Pool:
    text = str(ref).strip()
    pool = session.scalar(select(Pool).where(Pool.cluster_id == cluster_id, Pool.name == text))
    if pool is None and as_id(text):
        pool = session.scalar(select(Pool).where(Pool.cluster_id == cluster_id, Pool.id == as_id(text)))
    if pool is None:
        raise NotFound(f"no pool '{text}' in this cluster")
    return pool


def list_pools(session: Session, cluster_id: int) -> list[Pool]:
    return list(session.scalars(select(Pool).where(Pool.cluster_id == cluster_id)
                                .order_by(Pool.is_default.desc(), Pool.name)).all())


def pool_devices(session: Session, pool_id: int) -> list[tuple[Device, Node]]:
    return list(session.execute(select(Device, Node).join(Node, Node.id == Device.node_id)
                                .where(Device.pool_id == pool_id).order_by(Node.name, Device.index)).all())


def find_device(session: Session, cluster_id: int, ref: str | int) -> Device:
    """A device by id or as NODE:INDEX (for example gpu-01:3)."""
    text = str(ref).strip()
    device = None
    if ":" in text:
        node_name, _, index = text.rpartition(":")
        if is_digits(index) and int(index) <= MAX_DEVICE_INDEX:
            device = session.scalar(select(Device).join(Node, Node.id == Device.node_id)
                                    .where(Node.cluster_id == cluster_id, Node.name == node_name,
                                           Device.index == int(index)))
    elif as_id(text):
        device = session.scalar(select(Device).join(Node, Node.id == Device.node_id)
                                .where(Node.cluster_id == cluster_id, Device.id == as_id(text)))
    if device is None:
        raise NotFound(f"no device '{text}' in this cluster (give its id or NODE:INDEX)")
    return device


def busy_devices(session: Session, cluster_id: int) -> dict[int, int]:
    """device id -> id of a job holding it (admitted or running)."""
    rows = session.execute(select(Job.id, Job.devices).where(Job.cluster_id == cluster_id,
                                                             Job.state.in_(HOLDING_STATES))).all()
    busy: dict[int, int] = {}
    for job_id, devices in rows:
        for share in devices or []:
            if share.get("device_id") is not None:
                busy[int(share["device_id"])] = job_id
    return busy


def _check_name_free(session: Session, cluster_id: int, name: str, exclude_id: int | None = None) -> None:
    other = session.scalar(select(Pool.id).where(Pool.cluster_id == cluster_id, Pool.name == name))
    if other is not None and other != exclude_id:
        raise Conflict(f"a pool named {name} already exists in this cluster",
                       [FieldError("name", f"pool {name} already exists")])


def create_pool(session: Session, cluster_id: int, name: str, description: str | None = None,
                devices: Iterable[str | int] = (), nodes: Iterable[str] = ()) -> Pool:
    name = check_name("name", name)
    _check_name_free(session, cluster_id, name)
    pool = Pool(cluster_id=cluster_id, name=name, description=description)
    session.add(pool)
    session.flush()
    assign(session, pool, devices, nodes)
    bump_config_version(session, cluster_id)
    return pool


def rename_pool(session: Session, pool: Pool, name: str | None, description: str | None) -> Pool:
    if name is not None:
        name = check_name("name", name)
        _check_name_free(session, pool.cluster_id, name, pool.id)
        pool.name = name
    if description is not None:
        pool.description = description
    session.flush()
    bump_config_version(session, pool.cluster_id)
    return pool


def delete_pool(session: Session, pool: Pool) -> int:
    """Delete a pool; its devices and nodes return to the default pool. Returns how many devices moved."""
    if pool.is_default:
        raise Conflict("the default pool cannot be deleted: it holds every unassigned device")
    references.claim(session, Pool.id, pool.id)  # a scheduler cycle admitting into it commits first, then is seen
    running = session.scalars(select(Job.id).where(Job.placed_pool_id == pool.id, Job.state.in_(HOLDING_STATES))
                              .order_by(Job.id)).all()
    busy = busy_devices(session, pool.cluster_id)
    in_pool = set(session.scalars(select(Device.id).where(Device.pool_id == pool.id)).all())
    jobs = sorted(set(running) | {busy[d] for d in in_pool if d in busy})
    if jobs:
        listed = ", ".join(str(j) for j in jobs[:LISTED])
        raise Conflict(f"pool {pool.name} cannot be deleted: its devices run {len(jobs)} job(s) ({listed}); "
                       f"wait for them to finish or cancel them")
    problems = []
    # The pin would vanish (pool_id SET NULL) and the job could then run in any pool.
    pinned = session.scalars(select(Job.id).where(Job.pool_id == pool.id, Job.state.in_((QUEUED, PREEMPTED)))
                             .order_by(Job.id)).all()
    if pinned:
        listed = ", ".join(str(j) for j in pinned[:LISTED]) + (", ..." if len(pinned) > LISTED else "")
        problems.append(f"{len(pinned)} waiting job(s) are pinned to it ({listed}); cancel them or let them run "
                        f"first, since without the pool they could run anywhere")
    # The link would vanish (ON DELETE CASCADE); a profile with no pool left makes its jobs unplaceable.
    other = aliased(ProfilePool)
    others = (select(func.count()).select_from(other)
              .where(other.profile_id == Profile.id, other.pool_id != pool.id).correlate(Profile).scalar_subquery())
    stranded = session.scalars(select(Profile.name).join(ProfilePool, ProfilePool.profile_id == Profile.id)
                               .where(ProfilePool.pool_id == pool.id, others == 0).order_by(Profile.name)).all()
    if stranded:
        listed = ", ".join(stranded[:LISTED]) + (", ..." if len(stranded) > LISTED else "")
        problems.append(f"{len(stranded)} profile(s) would be left with no pool ({listed}); link them to another "
                        f"pool or delete them first")
    # A quota's pool list losing its only pool would become empty, and an empty list means every pool.
    confined = quotas_only_in(session, pool)
    if confined:
        listed = ", ".join(confined[:LISTED]) + (", ..." if len(confined) > LISTED else "")
        problems.append(f"{len(confined)} quota(s) may use only this pool ({listed}); give them another pool "
                        f"first, since without it they could use every pool")
    if problems:
        raise Conflict(f"pool {pool.name} cannot be deleted: " + "; ".join(problems))
    fallback = default_pool(session, pool.cluster_id)
    moved = 0
    for device in session.scalars(select(Device).where(Device.pool_id == pool.id)).all():
        device.pool_id = fallback.id
        moved += 1
    for node in session.scalars(select(Node).where(Node.pool_id == pool.id)).all():
        node.pool_id = fallback.id
    session.flush()
    references.forget_pool(session, pool.id)  # the finished jobs that ran in it keep their history without it
    session.delete(pool)
    session.flush()
    bump_config_version(session, pool.cluster_id)
    return moved


def _check_model(pool: Pool, device: Device, node: Node, pool_models: set[str]) -> str | None:
    """The problem with putting `device` into `pool`, if any: a (non-default) pool holds a single GPU model."""
    if pool.is_default:
        return None
    models = pool_models | {device.model}
    if len(models) > 1:
        held = pool.device_model or ", ".join(sorted(pool_models))
        return (f"device {node.name}:{device.index} is a {device.model} but pool {pool.name} holds {held} devices: "
                f"a pool holds a single GPU model")
    return None


def assign(session: Session, pool: Pool, devices: Iterable[str | int] = (), nodes: Iterable[str] = ()) -> list[Device]:
    """Move devices (by id or NODE:INDEX) and whole nodes (with all their devices) into `pool`, all or nothing.

    Refused when a device runs a job (moving it would break its placement) or when the pool would mix models.
    """
    errors: list[FieldError] = []
    chosen: dict[int, tuple[Device, Node]] = {}
    moved_nodes: list[Node] = []
    for i, ref in enumerate(devices):
        try:
            device = find_device(session, pool.cluster_id, ref)
        except NotFound as exc:
            errors.append(FieldError(f"devices.{i}", exc.detail))
            continue
        chosen[device.id] = (device, session.get(Node, device.node_id))
    for i, name in enumerate(nodes):
        node = session.scalar(select(Node).where(Node.cluster_id == pool.cluster_id, Node.name == str(name)))
        if node is None:
            errors.append(FieldError(f"nodes.{i}", f"no node '{name}' in this cluster"))
            continue
        moved_nodes.append(node)
        for device in session.scalars(select(Device).where(Device.node_id == node.id)).all():
            chosen[device.id] = (device, node)
    if errors:
        raise ValidationFailed("; ".join(e.message for e in errors), errors)
    busy = busy_devices(session, pool.cluster_id)
    pool_models = set(session.scalars(select(Device.model).where(Device.pool_id == pool.id).distinct()).all())
    for device, node in chosen.values():
        if device.pool_id == pool.id:
            continue
        if device.id in busy:
            errors.append(FieldError("devices", f"device {node.name}:{device.index} runs job {busy[device.id]}: "
                                                f"it can move once the job ends"))
            continue
        problem = _check_model(pool, device, node, pool_models)
        if problem:
            errors.append(FieldError("devices", problem))
            continue
        pool_models.add(device.model)
    if errors:
        mixing = any("single GPU model" in e.message for e in errors)
        cls = ValidationFailed if mixing else Conflict
        raise cls("; ".join(e.message for e in errors), errors)
    before = layout(session, pool.cluster_id)
    check_node_bounds(session, pool.cluster_id, before, before.moved(
        devices={d.id: pool.id for d, _ in chosen.values()}, nodes={n.id: pool.id for n in moved_nodes}),
        "nodes" if moved_nodes else "devices")
    for device, _ in chosen.values():
        device.pool_id = pool.id
    for node in moved_nodes:
        node.pool_id = pool.id
    session.flush()
    refresh_models(session, pool.cluster_id)
    bump_config_version(session, pool.cluster_id)
    return [d for d, _ in chosen.values()]


def unassign(session: Session, pool: Pool, device: Device) -> None:
    """Return one device to the default pool."""
    if pool.is_default:
        raise Conflict("devices of the default pool are unassigned already; assign them to another pool instead")
    if device.pool_id != pool.id:
        raise NotFound(f"device {device.id} is not in pool {pool.name}")
    busy = busy_devices(session, pool.cluster_id)
    if device.id in busy:
        raise Conflict(f"device {device.id} runs job {busy[device.id]}: it can move once the job ends")
    assign(session, default_pool(session, pool.cluster_id), [device.id])


def refresh_models(session: Session, cluster_id: int) -> None:
    """Keep Pool.device_model equal to the model its devices share (None when empty; the default pool: None)."""
    rows = session.execute(select(Device.pool_id, func.min(Device.model)).join(Node, Node.id == Device.node_id)
                           .where(Node.cluster_id == cluster_id).group_by(Device.pool_id)).all()
    models = dict(rows)
    for pool in session.scalars(select(Pool).where(Pool.cluster_id == cluster_id)).all():
        pool.device_model = None if pool.is_default else models.get(pool.id)
    session.flush()


# -- Neu.ro's node-pool attributes -----------------------------------------------------------------------------------

POOL_ATTRIBUTES = ("machine_type", "preemptible", "min_nodes", "max_nodes")
MAX_MACHINE_TYPE = 64


def check_node_bounds(session: Session, cluster_id: int, before: Layout, after: Layout, field: str) -> None:
    """Refuse a change of nodes or devices that takes a pool above its max_nodes or below its min_nodes. A pool
    already outside a bound (its min was set above what it spans) may still move towards it."""
    was, now = before.counts(), after.counts()
    problems = []
    for pool in list_pools(session, cluster_id):
        old, new = was.get(pool.id, 0), now.get(pool.id, 0)
        if pool.max_nodes is not None and new > pool.max_nodes and new > old:
            problems.append(FieldError(field, f"pool {pool.name} may span at most {pool.max_nodes} node(s) "
                                              f"(its max_nodes) and would span {new}"))
        if pool.min_nodes is not None and new < pool.min_nodes and new < old:
            problems.append(FieldError(field, f"pool {pool.name} must span at least {pool.min_nodes} node(s) "
                                              f"(its min_nodes) and would span {new}"))
    if problems:
        raise Conflict("; ".join(p.message for p in problems), problems)


def pool_attributes(pool: Pool) -> dict:
    return {name: getattr(pool, name) for name in POOL_ATTRIBUTES}


def set_pool_attributes(session: Session, pool: Pool, changes: dict) -> dict:
    """Set the machine type, preemptible, min_nodes and max_nodes given in `changes` (None clears one; preemptible
    None is false). Returns the attributes before the change. Checked together: bounds are whole numbers, min_nodes
    is at most max_nodes, max_nodes is not below what the pool spans now, and the default pool takes no bounds."""
    unknown = sorted(set(changes) - set(POOL_ATTRIBUTES))
    if unknown:
        raise invalid(unknown[0], f"is not a pool attribute; the attributes are {', '.join(POOL_ATTRIBUTES)}")
    before = pool_attributes(pool)
    after = before | changes
    errors: list[FieldError] = []
    machine = after["machine_type"]
    if machine is not None:
        machine = str(machine).strip() or None
        if machine is not None and len(machine) > MAX_MACHINE_TYPE:
            errors.append(FieldError("machine_type", f"must be at most {MAX_MACHINE_TYPE} characters long"))
    for name in ("min_nodes", "max_nodes"):
        value = after[name]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors.append(FieldError(name, "must be a whole number, zero or more"))
        elif pool.is_default and name in changes:
            errors.append(FieldError(name, "the default pool holds every node and device not assigned elsewhere, "
                                           "so it takes no node bounds: set them on a pool you create"))
    if not errors and after["min_nodes"] is not None and after["max_nodes"] is not None \
            and after["min_nodes"] > after["max_nodes"]:
        field = "min_nodes" if "min_nodes" in changes else "max_nodes"
        errors.append(FieldError(field, f"min_nodes ({after['min_nodes']}) must not be above max_nodes "
                                        f"({after['max_nodes']})"))
    if errors:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    spanned = layout(session, pool.cluster_id).counts().get(pool.id, 0)
    if "max_nodes" in changes and after["max_nodes"] is not None and after["max_nodes"] < spanned:
        message = (f"pool {pool.name} spans {spanned} node(s), more than max_nodes {after['max_nodes']}: move "
                   f"nodes or devices out of it first")
        raise Conflict(message, [FieldError("max_nodes", message)])
    pool.machine_type = machine
    pool.preemptible = bool(after["preemptible"])
    pool.min_nodes, pool.max_nodes = after["min_nodes"], after["max_nodes"]
    session.flush()
    return before
