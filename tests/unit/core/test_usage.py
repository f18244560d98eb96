"""Admission rule 1 at the tree level: limits along the path, borrowing only from what is really available."""

import pytest
from core_testkit import quota

from allotment.core.quantity import UNLIMITED_RAW
from allotment.core.usage import CAPACITY, LIMIT, ROOT, UsageTree

G = 1000  # one GPU in raw units


def tree_of(specs, capacity_gpus):
    return UsageTree(specs, {("p", "gpu"): capacity_gpus * G})


def req(tree, n):
    return ((tree.keys.find(("p", "gpu")), n * G),)


def fill(tree, qid, n):
    tree.apply(tree.index[qid], req(tree, n), 1)


COHORT = [
    quota("c", gpu_in={"p": 20}),
    quota("a", "c", gpu_in={"p": (10, 20)}),
    quota("b", "c", gpu_in={"p": (10, 14)}),
]
LENDING = [
    quota("c", gpu_in={"p": 20}),
    quota("a", "c", gpu_in={"p": (10, 20, 4)}),  # lends at most 4 of its 10
    quota("b", "c", gpu_in={"p": (10, 20)}),
]


@pytest.mark.parametrize(
    ("specs", "capacity", "usage", "who", "n", "expected"),
    [
        # plain fit inside the guarantee
        (COHORT, 20, {}, "a", 10, None),
        # borrowing from an idle sibling up to the quota's limit
        (COHORT, 20, {}, "a", 20, None),
        (COHORT, 20, {}, "b", 14, None),
        (COHORT, 20, {}, "b", 15, (LIMIT, "b")),  # b's limit is 14
        # physical capacity: b cannot borrow what a already uses
        (COHORT, 20, {"a": 10}, "b", 11, (CAPACITY, None)),
        (COHORT, 20, {"a": 10}, "b", 10, None),
        # lending limit: a lends only 4 of its unused 10
        (LENDING, 20, {}, "b", 14, None),
        (LENDING, 20, {}, "b", 15, (CAPACITY, None)),
        (LENDING, 20, {"a": 3}, "b", 14, None),  # a's unlendable part still 6 (10-4) > 3 in use
        (LENDING, 20, {"a": 8}, "b", 12, None),
        (LENDING, 20, {"a": 8}, "b", 13, (CAPACITY, None)),
        # a uses its own unlendable guarantee even when the pool looks full
        (LENDING, 20, {"b": 14}, "a", 6, None),
        (LENDING, 20, {"b": 14}, "a", 7, (CAPACITY, None)),
        # the cluster is smaller than the guarantees (overcommitted): capacity still wins
        (COHORT, 12, {"a": 10}, "b", 3, (CAPACITY, None)),
    ],
)
def test_first_block(specs, capacity, usage, who, n, expected):
    tree = tree_of(specs, capacity)
    for qid, amount in usage.items():
        fill(tree, qid, amount)
    block = tree.first_block(tree.index[who], req(tree, n))
    if expected is None:
        assert block is None
    else:
        kind, node = expected
        assert block is not None and block.kind == kind
        if kind == LIMIT:
            assert tree.ids[block.node] == node
        else:
            assert block.node == ROOT


def test_limit_of_an_ancestor_blocks():
    specs = [quota("org", gpu_in={"p": (0, 8)}), quota("team", "org")]
    tree = tree_of(specs, 100)
    fill(tree, "team", 8)
    block = tree.first_block(tree.index["team"], req(tree, 1))
    assert block.kind == LIMIT and tree.ids[block.node] == "org"


def test_apply_is_reversible_and_usage_counts_on_ancestors():
    tree = tree_of(LENDING, 20)
    before = ([row[:] for row in tree.u], [row[:] for row in tree.eu])
    fill(tree, "a", 3)
    fill(tree, "b", 12)
    k = tree.keys.find(("p", "gpu"))
    assert tree.u[tree.index["c"]][k] == 15 * G
    assert tree.u[ROOT][k] == 15 * G
    assert tree.eu[ROOT][k] == (6 + 12) * G  # a occupies its unlendable 6 although it uses 3
    fill_back = [("b", 12), ("a", 3)]
    for qid, n in fill_back:
        tree.apply(tree.index[qid], req(tree, n), -1)
    assert (tree.u, tree.eu) == before


@pytest.mark.parametrize(
    ("usage", "n", "expected_class"),
    [({}, 10, 0), ({}, 11, 1), ({"a": 10}, 1, 1), ({"b": 14}, 5, 0)],
)
def test_borrow_class(usage, n, expected_class):
    tree = tree_of(COHORT, 40)
    for qid, amount in usage.items():
        fill(tree, qid, amount)
    cls, share = tree.borrow_class_and_share(tree.index["a"], req(tree, n))
    assert cls == expected_class
    assert (share > 0) == (cls == 1)


def test_unspecified_keys_never_count_as_borrowing_and_are_unlimited():
    tree = UsageTree([quota("free")], {("p", "gpu"): 8 * G})
    q = tree.index["free"]
    assert tree.lim[q][tree.keys.find(("p", "gpu"))] == UNLIMITED_RAW
    assert tree.borrow_class_and_share(q, req(tree, 8)) == (0, 0.0)
    assert not tree.within_guarantee(q, req(tree, 1))  # no guarantee: nothing to reclaim


def test_fair_share_divides_by_weight():
    specs = [quota("a", gpu_in={"p": 0}, weight=1), quota("b", gpu_in={"p": 0}, weight=2)]
    tree = tree_of(specs, 10)
    _, share_a = tree.borrow_class_and_share(tree.index["a"], req(tree, 2))
    _, share_b = tree.borrow_class_and_share(tree.index["b"], req(tree, 2))
    assert share_a == pytest.approx(0.2) and share_b == pytest.approx(0.1)


def test_removal_guard_respects_guarantee_up_to_common_ancestor():
    tree = tree_of(COHORT, 20)
    fill(tree, "b", 12)
    b, a = tree.index["b"], tree.index["a"]
    stop = tree.lca_below(a, b)
    assert tree.ids[stop] == "c"
    assert tree.removable_without_dropping_below_guarantee(b, req(tree, 2), stop)
    assert not tree.removable_without_dropping_below_guarantee(b, req(tree, 3), stop)
