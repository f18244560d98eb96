"""Sentences for Wait decisions: every reason names the rule and the numbers that block the job."""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from allotment.core.model import PreemptReason, WaitCode
from allotment.core.quantity import format_raw
from allotment.core.queues import Hold
from allotment.core.resources import ANY_POOL, ResourceKey
from allotment.core.usage import CAPACITY, LIMIT, ROOT, AdmitPlan, UsageTree

DEVICE: Final = 3
HOLD: Final = 4


class Blocker(NamedTuple):
    """Why one option (pool) of a job did not fit: a tree Block (LIMIT / CAPACITY), a DEVICE shortfall or a HOLD."""

    kind: int
    node: int
    key: int
    needed: int
    requested: int
    detail: Any = None  # DEVICE: the DevicePool or a NodeNeed; HOLD: the Hold (Any: compiled, `object` fails)


LimitCheck = tuple[list[int], list[int], int, int, Blocker]  # (usage row, limit row, key, amount, its Blocker)
CapacityCheck = tuple[int, int, Blocker]  # (key, amount, its Blocker)


def option_checks(plan: AdmitPlan) -> tuple[tuple[LimitCheck, ...], tuple[CapacityCheck, ...]]:
    """An option's limit checks (the plan's, in its order) and capacity checks (its request's keys), each with the
    Blocker it answers when it fails: immutable values, built once per option instead of at each blocked try."""
    limits = tuple((ua, la, k, r, Blocker(LIMIT, a, k, r, r, None)) for ua, la, k, r, a in plan.lchk)
    capacity = tuple((k, r, Blocker(CAPACITY, ROOT, k, r, r, None)) for k, r in plan.req)
    return limits, capacity


class NodeNeed(NamedTuple):
    """A DEVICE blocker of a job placed by node (placement.NodePool): what it needs on each of ``count`` nodes."""

    pool: Any  # the NodePool
    gpu: int
    cpu: int
    mem: int
    count: int  # type: ignore[assignment]  # (shadows tuple.count)


def _where(k: ResourceKey) -> str:
    return "all pools" if k.pool == ANY_POOL else f"pool {k.pool}"


def code_of(b: Blocker) -> str:
    if b.kind == LIMIT:
        return WaitCode.LIMIT_REACHED
    if b.kind == CAPACITY:
        return WaitCode.NO_CAPACITY
    if b.kind == DEVICE:
        return WaitCode.NO_DEVICE_FIT
    hold = b.detail
    assert isinstance(hold, Hold)
    if hold.kind == Hold.DELAY:
        return WaitCode.HELD_FOR_PREEMPTING_JOB
    return WaitCode.GUARANTEE_PENDING if hold.kind == Hold.GUARANTEE else WaitCode.RESERVED_FOR_STARVING_JOB


def sentence(tree: UsageTree, b: Blocker, now: float) -> str:
    if b.kind == DEVICE:
        if isinstance(b.detail, NodeNeed):
            need = b.detail
            return need.pool.node_shortfall(need.gpu, need.cpu, need.mem, need.count)
        return b.detail.shortfall(b.needed)
    k = tree.keys.keys[b.key]
    res = k.resource
    if b.kind == LIMIT:
        return (
            f"quota {tree.ids[b.node]}: limit of {format_raw(tree.lim[b.node][b.key], res)} {k.describe()} reached "
            f"({format_raw(tree.u[b.node][b.key], res)} in use, {format_raw(b.requested, res)} requested)"
        )
    if b.kind == CAPACITY:
        cap = tree.cap[b.key]
        used = tree.u[ROOT][b.key]
        occupied = tree.eu[ROOT][b.key]
        available = (b.requested - b.needed) + max(cap - occupied, 0)
        held = max(occupied - used, 0)
        text = (
            f"{_where(k)}: {format_raw(b.requested, res)} {res} requested but only {format_raw(available, res)} "
            f"available ({format_raw(used, res)} of {format_raw(cap, res)} in use"
        )
        if held:
            text += f", {format_raw(held, res)} held back by other quotas' unlendable guarantees"
        return text + ")"
    hold = b.detail
    assert isinstance(hold, Hold)
    scope = _where(k) if hold.node == ROOT else f"quota {tree.ids[hold.node]} ({k.describe()})"
    if hold.kind == Hold.GUARANTEE:
        return (
            f"{scope}: {res} is held for quota {tree.ids[hold.quota]}, which is below its guarantee "
            f"(its job {hold.job_id} waits first; this job would borrow)"
        )
    if hold.kind == Hold.DELAY:
        return (
            f"{scope}: {res} is held for job {hold.job_id} of quota {tree.ids[hold.quota]} (priority "
            f"{hold.priority}), which may preempt lower-priority jobs once it has been queued "
            f"{hold.until - hold.submitted_at:g} s (the preemption delay); started now, this job would be one of them"
        )
    return (
        f"{scope}: {res} is reserved for job {hold.job_id} of quota {tree.ids[hold.quota]}, "
        f"queued for {max(now - hold.submitted_at, 0):.0f} s (past the starvation age)"
    )


SENTENCE_MEMO_MAX: Final = 65_536  # entries of a state's sentence memo before it starts again (a few MB at most)


def combine(tree: UsageTree, blockers: list[Blocker], now: float, extra: str = "", parts: tuple = (),
            memo: dict[tuple, str] | None = None) -> tuple[str, str]:
    """(code, message) for a job whose every option is blocked; the first pool's code wins. With ``memo``, the
    sentences of LIMIT and CAPACITY blockers are kept there by their signature parts (``parts[i]`` for
    ``blockers[i]``: the numbers of blocking.Blocking._block's signature): those sentences depend on nothing else, and
    a full pool gives every job of the same size waiting there the same one. A guarantee hold's sentence is kept by
    its part and the holding quota (the part names the holding job, its kind, quota or pool and key)."""
    texts = []
    for i, b in enumerate(blockers):
        kind = b[0]  # (b.kind: a NamedTuple field by name costs twice as much)
        if memo is not None and (kind == LIMIT or kind == CAPACITY or (kind == HOLD and b[5].kind == Hold.GUARANTEE)):
            part = parts[i] if kind != HOLD else (parts[i], b[5].quota)
            text = memo.get(part)
            if text is None:
                if len(memo) >= SENTENCE_MEMO_MAX:
                    memo.clear()
                text = memo[part] = sentence(tree, b, now)
        else:
            text = sentence(tree, b, now)
        texts.append(text)
    message = "; ".join(texts)
    if extra:
        message = f"{message}; {extra}"
    return code_of(blockers[0]), message


def preempt_message(tree: UsageTree, victim_id: str, victim_quota: int, victim_priority: int, reason: str,
                    job_id: str, quota: int, priority: int) -> str:
    vq, q = tree.ids[victim_quota], tree.ids[quota]
    if reason == PreemptReason.CHILD_PREEMPTION:
        return (
            f"job {victim_id} (quota {vq}, priority {victim_priority}) preempted by job {job_id} (priority {priority}) "
            f"submitted to parent quota {q}, which has child-level preemption"
        )
    if reason == PreemptReason.WITHIN_QUOTA and victim_priority >= priority:
        return (
            f"job {victim_id} (priority {victim_priority}) preempted by job {job_id} (priority {priority}) of the same "
            f"quota {q}, submitted before it and queued past the starvation age: it had overtaken that job"
        )
    if reason == PreemptReason.WITHIN_QUOTA:
        return (
            f"job {victim_id} (priority {victim_priority}) preempted by higher-priority job {job_id} "
            f"(priority {priority}) of the same quota {q}"
        )
    return (
        f"job {victim_id} (quota {vq}, priority {victim_priority}) preempted: quota {q} is below its guarantee and "
        f"reclaims capacity that quota {vq} borrows, for job {job_id}"
    )
