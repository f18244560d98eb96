import pytest
from core_testkit import gpu, lim, quota

from allotment.core.quota_tree import (
    QuotaLimits,
    QuotaSpec,
    Reclaim,
    ScaleError,
    scale,
    validate_tree,
)


def codes(errors):
    return sorted(e.code for e in errors)


PAI = [
    quota("Quota1", gpu_in={"a100": (128, 128)}, child_preemption=True),
    quota("Quota1.1", "Quota1", gpu_in={"a100": (48, 48)}),
    quota("Quota1.2", "Quota1", gpu_in={"a100": (80, 80)}),
]


@pytest.mark.parametrize(
    ("specs", "expected_codes", "message"),
    [
        (PAI, [], None),
        (
            [quota("a", "b"), quota("b", "c"), quota("c", "a")],
            ["cycle"],
            "parent chain forms a cycle",
        ),
        ([quota("a", "a")], ["cycle"], "a -> a"),
        ([quota("a", "ghost")], ["unknown_parent"], "quota a: parent quota ghost does not exist"),
        ([quota("a"), quota("a")], ["duplicate_quota"], "quota a is defined twice"),
        (
            [quota("a", gpu_in={"h100": (8, 4)})],
            ["limit_below_guarantee"],
            "quota a: limit of 4 gpu in pool h100 is below its guarantee of 8",
        ),
        (
            [quota("a", gpu_in={"h100": (4, 8, 6)})],
            ["lending_above_guarantee"],
            "lending limit of 6 gpu in pool h100 exceeds its guarantee of 4",
        ),
        (
            [
                quota("Quota1", gpu_in={"a100": (128, 128)}),
                quota("Quota1.1", "Quota1", gpu_in={"a100": 56}),
                quota("Quota1.2", "Quota1", gpu_in={"a100": 80}),
            ],
            ["children_exceed_guarantee"],
            "children of quota Quota1 guarantee 136 gpu in pool a100 but Quota1 guarantees 128",
        ),
        (
            [quota("p"), quota("c", "p", gpu_in={"h100": 2})],
            ["children_exceed_guarantee"],
            "children of quota p guarantee 2 gpu in pool h100 but p guarantees 0",
        ),
        ([QuotaSpec("a", weight=-1)], ["invalid_weight"], "weight must be zero or more"),
        ([QuotaSpec("a", min_runtime_s=-5)], ["invalid_min_runtime"], "min_runtime_s"),
        (
            [QuotaSpec("a", resources={("h100", "gpu"): QuotaLimits(gpu("unlimited"))})],
            ["unlimited_guarantee"],
            "cannot be unlimited",
        ),
        (
            [QuotaSpec("a", resources={("h100", "disk"): QuotaLimits()})],
            ["unknown_resource"],
            "unknown resource 'disk'",
        ),
    ],
)
def test_validate_tree(specs, expected_codes, message):
    errors = validate_tree(specs)
    assert codes(errors) == expected_codes
    if message:
        assert any(message in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize(
    ("parent", "children", "messages"),
    [
        # per-pool children under an all-pools ("*") parent: the sum over all pools is what counts
        ({"*": 16}, [{"a100": 8}], []),
        ({"*": 16}, [{"a100": 8}, {"h100": 8}], []),
        ({"*": 16}, [{"a100": 20}], [("children of quota p guarantee 20 gpu in all pools together (20 in pool a100) "
                                     "but p guarantees 16")]),
        ({"*": 16}, [{"a100": 10}, {"h100": 10}],
         [("children of quota p guarantee 20 gpu in all pools together (10 in pool a100, 10 in pool h100) "
          "but p guarantees 16")]),
        # a parent's own per-pool guarantee bounds that pool, its "*" guarantee the total
        ({"*": 16, "a100": 8}, [{"a100": 8}, {"h100": 8}], []),
        ({"*": 16, "a100": 8}, [{"a100": 12}], ["children of quota p guarantee 12 gpu in pool a100 but p guarantees 8"]),
        # "*" children under a per-pool parent: an all-pools guarantee may be claimed entirely in any one pool
        ({"a100": 16}, [{"*": 8}], []),
        ({"a100": 16}, [{"*": 8}, {"*": 8}], []),
        ({"a100": 16}, [{"*": 20}], [("children of quota p guarantee 20 gpu in pool a100 (0 in that pool and 20 in all "
                                     "pools, which may all be used there) but p guarantees 16")]),
        ({"a100": 4, "h100": 4}, [{"*": 8}],
         [("children of quota p guarantee 8 gpu in pool a100 (0 in that pool and 8 in all pools, which may all be "
          "used there) but p guarantees 4"),
          ("children of quota p guarantee 8 gpu in pool h100 (0 in that pool and 8 in all pools, which may all be "
          "used there) but p guarantees 4")]),
        # mixed siblings: per-pool and all-pools guarantees add up in each pool ...
        ({"a100": 16}, [{"a100": 8}, {"*": 8}], []),
        ({"a100": 16}, [{"a100": 12}, {"*": 8}], [("children of quota p guarantee 20 gpu in pool a100 (12 in that pool "
                                                  "and 8 in all pools, which may all be used there) but p guarantees 16")]),
        # ... and over all pools under a "*" parent
        ({"*": 16}, [{"a100": 8}, {"*": 8}], []),
        ({"*": 16}, [{"a100": 8}, {"*": 12}], [("children of quota p guarantee 20 gpu in all pools together (12 in "
                                               "all pools, 8 in pool a100) but p guarantees 16")]),
        ({"*": 16}, [{"*": 10}, {"*": 10}], ["children of quota p guarantee 20 gpu in all pools but p guarantees 16"]),
        # a child setting both can only claim the smaller of the two in that pool (a job counts on both keys)
        ({"a100": 8}, [{"a100": 8, "*": 8}], []),
        ({"*": 8}, [{"a100": 4, "*": 8}], []),
        # a sibling in a pool the parent does not guarantee at all is still refused, and counts the "*" children too
        ({"*": 16}, [{"a100": 8}, {"h100": 8}, {"*": 1}],
         [("children of quota p guarantee 17 gpu in all pools together (1 in all pools, 8 in pool a100, 8 "
          "in pool h100) but p guarantees 16")]),
        ({"a100": 16}, [{"h100": 2}, {"*": 4}],
         [("children of quota p guarantee 6 gpu in pool h100 (2 in that pool and 4 in all pools, "
          "which may all be used there) but p guarantees 0 (it sets no guarantee on gpu in pool h100 or in all "
          "pools)")]),
        ({}, [{"*": 4}], ["children of quota p guarantee 4 gpu in all pools but p guarantees 0"]),
        # an all-pools guarantee beside a per-pool one escapes the per-pool check, but not the parent's total
        ({"a100": 128}, [{"a100": 48, "*": 200}, {"a100": 80}],
         [("children of quota p guarantee 280 gpu in all pools together (200 in all pools, 80 in pool a100) but p "
           "guarantees 128 in all its pools together")]),
        ({"a100": 16, "h100": 16}, [{"a100": 8, "h100": 8, "*": 24}], []),
    ],
)
def test_children_guarantees_across_all_pools_and_per_pool(parent, children, messages):
    specs = [quota("p", gpu_in=parent)] + [quota(f"c{i}", "p", gpu_in=c) for i, c in enumerate(children)]
    errors = validate_tree(specs)
    assert [str(e) for e in errors if e.code != "children_exceed_guarantee"] == []
    found = [str(e) for e in errors]
    assert len(found) == len(messages), found
    for message in messages:
        assert any(message in f for f in found), found


def test_top_level_guarantees_checked_against_capacity_when_given():
    specs = [quota("a", gpu_in={"h100": 6}), quota("b", gpu_in={"h100": 6})]
    assert validate_tree(specs) == []
    errors = validate_tree(specs, capacity={("h100", "gpu"): gpu(8)})
    assert [e.code for e in errors] == ["guarantees_exceed_capacity"]
    assert "top-level quotas guarantee 12 gpu in pool h100 but the pool has only 8" in str(errors[0])


def test_policies_are_normalised():
    spec = QuotaSpec("a", reclaim="any", within_quota_preemption="lower_priority",
                     allowed_priority_classes=["training"])
    assert spec.reclaim is Reclaim.ANY
    assert spec.allowed_priority_classes == frozenset({"training"})
    with pytest.raises(ValueError):
        QuotaSpec("a", reclaim="sometimes")


def test_pai_scale_moves_capacity_between_siblings_in_one_call():
    new = scale(PAI, {"Quota1.1": {("a100", "gpu"): gpu(56)}, "Quota1.2": {("a100", "gpu"): gpu(72)}})
    by_id = {s.id: s for s in new}
    assert by_id["Quota1.1"].resources[("a100", "gpu")] == QuotaLimits(gpu(56), gpu(56))  # fixed-size stays fixed
    assert by_id["Quota1.2"].resources[("a100", "gpu")] == QuotaLimits(gpu(72), gpu(72))
    assert by_id["Quota1"] == PAI[0]


def test_scale_one_at_a_time_would_fail_but_together_succeeds():
    with pytest.raises(ScaleError, match="guarantee 136 gpu in pool a100 but Quota1 guarantees 128"):
        scale(PAI, {"Quota1.1": {("a100", "gpu"): gpu(56)}})


def test_scale_beyond_parent_is_refused_and_changes_nothing():
    with pytest.raises(ScaleError) as info:
        scale(PAI, {"Quota1.1": {("a100", "gpu"): gpu(64)}, "Quota1.2": {("a100", "gpu"): gpu(80)}})
    assert [e.code for e in info.value.errors] == ["children_exceed_guarantee"]
    assert "children of quota Quota1 guarantee 144 gpu in pool a100 but Quota1 guarantees 128" in str(info.value)
    assert PAI[1].resources[("a100", "gpu")].guarantee == gpu(48)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (gpu(6), lim("gpu", 6, 16)),  # limit kept when it differs from the guarantee
        (lim("gpu", 2, 3), lim("gpu", 2, 3)),  # full replacement
    ],
)
def test_scale_change_forms(change, expected):
    specs = [quota("a", gpu_in={"h100": (4, 16)})]
    (out,) = scale(specs, {"a": {("h100", "gpu"): change}})
    assert out.resources[("h100", "gpu")] == expected


def test_scale_unknown_quota():
    with pytest.raises(ScaleError, match="cannot scale quota nope: it does not exist"):
        scale(PAI, {"nope": {("a100", "gpu"): gpu(1)}})


def test_scale_to_limit_below_guarantee_refused():
    with pytest.raises(ScaleError, match="limit of 16 gpu in pool h100 is below its guarantee of 20"):
        scale([quota("a", gpu_in={"h100": (4, 16)})], {"a": {("h100", "gpu"): gpu(20)}})
