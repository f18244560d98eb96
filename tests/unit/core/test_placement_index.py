"""The node placement index (placement.NodePool with fit_index.FitIndex): a search visits only nodes with the job's
cores and memory free, yet finds a node whenever one can take the job; node updates leave the indexes as a fresh build
would."""

import pytest
from core_testkit import cpu, mem, quota
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.core.admission import SchedulerState
from allotment.core.devices import WHOLE
from allotment.core.fit_index import FitIndex
from allotment.core.inventory import changed_nodes
from allotment.core.model import Device, Node, Pool
from allotment.core.placement import NodePool
from allotment.core.quantity import Quantity

GIB = 1 << 30


def index_view(dp: NodePool) -> tuple:
    """Everything a placement reads, in a form independent of the order of past events (insertion order inside a
    bucket is a tie-break only)."""
    wfit = {n: dp._wfit.where(n) for n in dp.cpu_cap if dp._wfit.where(n) is not None}
    sfit = {d: dp._sfit.where(d) for d in dp.free if dp._sfit.where(d) is not None}
    return (dict(dp.free), dict(dp.cap), dict(dp.node), dict(dp.cpu_cap), dict(dp.mem_cap),
            {n: dp.cpu_used.get(n, 0) for n in dp.cpu_cap}, {n: dp.mem_used.get(n, 0) for n in dp.cpu_cap},
            {n: dp.gpu_free[n] for n in dp.cpu_cap}, dp.total_free, dp.total_capacity, dp.total_cpu, dp.total_memory,
            {n: sorted(s) for n, s in dp._whole.items()}, {c: sorted(b) for c, b in dp._nodes_by_count.items()},
            {v: sorted(b) for v, b in dp._by_free.items()}, wfit, sfit, dict(dp._filed), dict(dp._level))


def expected_index(dp: NodePool) -> tuple[dict, dict]:
    """The GPU index recomputed from the pool's plain figures: nodes by completely free devices and devices by a free
    share below one GPU, each at its node's whole free cores and free GiB."""
    level = {n: (max(c - dp.cpu_used[n], 0) // 1000, max(dp.mem_cap[n] - dp.mem_used[n], 0) >> 30)
             for n, c in dp.cpu_cap.items()}
    whole = {n: (len(s), *level[n]) for n, s in dp._whole.items() if s}
    shares = {d: (f, *level[dp.node[d]]) for d, f in dp.free.items() if 0 < f < WHOLE}
    return whole, shares


def feasible(dp: NodePool, gpu: int, cpu_: int, mem_: int) -> set[str]:
    """Every node that could take the job, by brute force over the plain figures."""
    out = set()
    for node, ccap in dp.cpu_cap.items():
        if ccap - dp.cpu_used[node] < cpu_ or dp.mem_cap[node] - dp.mem_used[node] < mem_:
            continue
        frees = [dp.free[d] for d in dp.devs[node]]
        if gpu >= WHOLE:
            ok = sum(1 for d in dp.devs[node] if dp.free[d] == WHOLE and dp.cap[d] == WHOLE) >= gpu // WHOLE
        elif gpu > 0:
            ok = any(f >= gpu for f in frees)
        else:
            ok = True
        if ok:
            out.add(node)
    return out


# -- FitIndex ---------------------------------------------------------------------------------------------------------
def test_fit_index_scans_a_key_from_its_levels_up_tightest_first_newest_first():
    ix = FitIndex()
    for item, key, cores, gib in [("a", 1, 4, 10), ("b", 1, 2, 50), ("c", 1, 4, 10), ("d", 2, 9, 1), ("e", 1, 7, 5),
                                  ("f", 1, 4, 3)]:
        ix.put(item, key, cores, gib)
    assert list(ix.scan(1, 3, 0)) == ["f", "c", "a", "e"]
    assert list(ix.scan(1, 3, 6)) == ["c", "a"]  # e has the cores but not the memory
    assert list(ix.scan(1, 0, 0)) == ["b", "f", "c", "a", "e"]
    assert list(ix.scan(1, 8, 0)) == [] and list(ix.scan(1, 0, 51)) == []
    assert list(ix.scan(3, 0, 0)) == []
    ix.put("a", 2, 9, 1)  # moves
    ix.drop("e")
    ix.drop("f")
    ix.drop("zz")  # not filed: nothing happens
    assert list(ix.scan(1, 0, 0)) == ["b", "c"] and list(ix.scan(2, 0, 0)) == ["a", "d"]
    assert ix.where("a") == (2, 9, 1) and ix.where("e") is None and len(ix) == 4
    for item in "abcd":
        ix.drop(item)
    assert len(ix) == 0 and not ix.has(1) and not ix.has(2)


# -- the search finds a node whenever one fits -----------------------------------------------------------------------
NODE_SHAPES = [(8, 96_000, 384 * GIB), (2, 104_000, 512 * GIB), (4, 16_000, 64 * GIB), (0, 32_000, 128 * GIB)]
JOB = st.tuples(st.sampled_from([0, 100, 250, 500, 990, 1000, 2000, 4000, 8000]),
                st.sampled_from([0, 500, 1000, 2500, 8000, 16000, 48000]),
                st.sampled_from([0, 1 * GIB, 16 * GIB, 64 * GIB, 200 * GIB]))


def build(shapes: list[int]) -> NodePool:
    nodes, devices = [], []
    for i, s in enumerate(shapes):
        g, c, m = NODE_SHAPES[s]
        nodes.append((f"n{i}", c, m))
        devices += [(f"n{i}-g{k}", WHOLE, WHOLE, f"n{i}") for k in range(g)]
    return NodePool("p", devices, nodes)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, len(NODE_SHAPES) - 1), min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 9), JOB, st.integers(0, 10_000)), max_size=60))
def test_a_job_waits_only_when_no_node_can_take_it_and_the_index_stays_exact(shapes, ops):
    dp = build(shapes)
    held: list[tuple] = []
    for action, (gpu, cpu_, mem_), pick in ops:
        if action < 2 and held:  # a job ends
            dp.release_job(*held.pop(pick % len(held)))
        elif action == 2:  # a node is drained, or comes back with its shape
            node = f"n{pick % len(shapes)}"
            if node in dp.cpu_cap:
                dp.remove_node(node)
            else:
                g, c, m = NODE_SHAPES[shapes[pick % len(shapes)]]
                dp.set_node(node, c, m, [(f"{node}-g{k}", WHOLE, WHOLE) for k in range(g)])
        else:
            fits = feasible(dp, gpu, cpu_, mem_)
            chosen = dp.choose_job(gpu, cpu_, mem_, 1)
            assert (chosen is not None) == bool(fits), (gpu, cpu_, mem_, fits)
            if chosen is not None:
                _, shares, nodes = chosen
                assert nodes[0] in fits
                dp.take_job(shares, nodes, cpu_, mem_)
                held.append((shares, nodes, cpu_, mem_))
        whole, shares_ix = expected_index(dp)
        assert {n: dp._wfit.where(n) for n in whole} == whole
        assert len(dp._wfit) == len(whole)
        assert {d: dp._sfit.where(d) for d in shares_ix} == shares_ix
        assert len(dp._sfit) == len(shares_ix)
        cpu_only = {n: (1 if dp.gpu_free[n] else 0, *dp._level[n]) for n in dp.cpu_cap}
        assert {n: dp._cfit.where(n) for n in cpu_only} == cpu_only and len(dp._cfit) == len(cpu_only)


def test_a_gang_finds_distinct_nodes_with_the_cores_it_needs():
    dp = NodePool("p", [(f"n{i}-g0", WHOLE, WHOLE, f"n{i}") for i in range(4)],
                  [("n0", 4000, GIB), ("n1", 16000, GIB), ("n2", 16000, GIB), ("n3", 32000, GIB)])
    _, _, nodes = dp.choose_job(1000, 12000, 0, 3)
    assert sorted(nodes) == ["n1", "n2", "n3"]
    assert dp.choose_job(1000, 20000, 0, 2) is None


# -- node updates equal a fresh build ---------------------------------------------------------------------------------
def pool_of(nodes: dict[str, tuple[int, int, int]], busy: dict[str, int] | None = None) -> Pool:
    busy = busy or {}
    devices = tuple(Device(f"{n}-g{i}", free=_milli(WHOLE - busy.get(f"{n}-g{i}", 0)), node=n)
                    for n, (g, _, _) in nodes.items() for i in range(g))
    return Pool("p", devices, nodes=tuple(Node(n, cpu(c), mem(f"{m}Gi")) for n, (_, c, m) in nodes.items()))


def _milli(raw: int) -> Quantity:
    return Quantity(raw)


BASE = {"a": (8, 96, 384), "b": (2, 104, 512), "c": (4, 16, 64)}


@pytest.mark.parametrize(
    ("nodes", "busy"),
    [
        ({**BASE, "b": (2, 52, 512)}, {}),  # one node's CPU halves
        ({**BASE, "a": (4, 96, 384)}, {}),  # one node loses devices
        ({k: v for k, v in BASE.items() if k != "c"}, {}),  # a node leaves
        ({**BASE, "d": (1, 8, 32)}, {}),  # a node joins
        (BASE, {"a-g3": 400, "c-g0": 1000}),  # devices in use outside the scheduler
        ({"c": (4, 16, 64), "a": (8, 96, 384)}, {"c-g1": 250}),  # several changes at once
    ],
)
def test_update_pool_and_node_updates_equal_a_fresh_build(nodes, busy):
    updated = SchedulerState([quota("q")], [pool_of(BASE)])
    updated.update_pool(pool_of(nodes, busy))
    fresh = SchedulerState([quota("q")], [pool_of(nodes, busy)])
    assert index_view(updated._devices["p"]) == index_view(fresh._devices["p"])
    by_node = SchedulerState([quota("q")], [pool_of(BASE)])
    changed, gone = changed_nodes(pool_of(BASE), pool_of(nodes, busy))
    for name in gone:
        by_node.remove_node("p", name)
    for node, devices in changed:
        by_node.update_node("p", node, devices)
    assert index_view(by_node._devices["p"]) == index_view(fresh._devices["p"])
    for state in (updated, by_node):
        keys = state._pool_keys["p"]
        assert [state._tree.cap[keys[r]] for r in ("gpu", "cpu", "memory")] == \
            [fresh._tree.cap[fresh._pool_keys["p"][r]] for r in ("gpu", "cpu", "memory")]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (BASE, BASE, ([], [])),
        (BASE, {**BASE, "b": (2, 52, 512)}, (["b"], [])),
        (BASE, {**BASE, "a": (7, 96, 384)}, (["a"], [])),
        (BASE, {"a": BASE["a"], "b": BASE["b"]}, ([], ["c"])),
        (BASE, {**BASE, "d": (0, 8, 32)}, (["d"], [])),
        ({**BASE, "d": (0, 8, 32)}, BASE, ([], ["d"])),
    ],
)
def test_changed_nodes_names_only_the_nodes_that_differ(old, new, expected):
    changed, gone = changed_nodes(pool_of(old), pool_of(new))
    assert ([n.name for n, _ in changed], gone) == expected
    for node, devices in changed:
        assert [d.id for d in devices] == [d.id for d in pool_of(new).devices if d.node == node.name]


def test_changed_nodes_is_none_when_the_change_is_not_node_by_node():
    listed = pool_of(BASE)
    assert changed_nodes(Pool("p", listed.devices), listed) is None  # the pool starts listing its nodes
    moved = tuple(Device(d.id, d.free, d.capacity, "b" if d.id == "a-g0" else d.node) for d in listed.devices)
    assert changed_nodes(listed, Pool("p", moved, nodes=listed.nodes)) is None  # a device moved between nodes


# -- the answer a choose_job keeps for the place_job that follows ------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(NODE_SHAPES) - 1), min_size=1, max_size=8), st.booleans(),
       st.lists(st.tuples(st.integers(0, 5), JOB, st.integers(0, 10_000)), max_size=40))
def test_place_job_after_changes_places_as_a_fresh_choice_would(shapes, tracked, ops):
    """choose_job() keeps its answer for place_job(), and node_shortfall() the nodes it compares; whatever happened
    in between (CPU taken alone, GPU placed by the device path, jobs ending, nodes changing, the demand growing),
    place_job() places as a fresh choice would and a wait names the node a fresh look would."""
    dp = build(shapes)
    if not tracked and dp.free:  # the same devices, node CPU and memory unlimited
        dp = NodePool("p", [(d, dp.free[d], dp.cap[d], dp.node[d]) for d in dp.free])
    held: list[tuple] = []
    for action, (gpu, cpu_, mem_), pick in ops:
        dp.choose_job(gpu, cpu_, mem_, 1 + pick % 2)  # kept
        dp.node_shortfall(gpu, cpu_, mem_, 1)
        node = sorted(dp.devs)[pick % len(dp.devs)]
        if action == 0 and held:
            dp.release_job(*held.pop(pick % len(held)))
        elif action == 1:
            dp.take_job((), (node,), 1000, GIB)
            held.append(((), (node,), 1000, GIB))
        elif action == 2 and 0 < gpu < WHOLE and not dp.tracked:  # the device path (untracked pools only)
            dp.place(gpu)
        elif action == 3:
            dp.demand.add(gpu or 500, cpu_)
        elif action == 4 and dp.tracked:
            _, c, m = NODE_SHAPES[shapes[pick % len(shapes)]]
            dp.set_node(node, c // 2, m, [(d, dp.free[d], dp.cap[d]) for d in dp.devs[node]])
        said = dp.node_shortfall(gpu, cpu_, mem_, 1)
        dp._near = None
        assert said == dp.node_shortfall(gpu, cpu_, mem_, 1)
        kept = dp._chosen
        dp._chosen = None
        fresh = dp.choose_job(gpu, cpu_, mem_, 1 + pick % 2)
        dp._chosen = kept
        placed = dp.place_job(gpu, cpu_, mem_, 1 + pick % 2)
        assert placed == (None if fresh is None else fresh[1:])
        if placed is not None:
            held.append((*placed, cpu_, mem_))
