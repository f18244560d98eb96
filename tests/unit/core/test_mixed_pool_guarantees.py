"""Trees that mix all-pools ("*") and per-pool guarantees between parent and children, which validate_tree accepts
(core/quota_tree.py), behave in admission as validation promises: a child's guarantee is reclaimed from a borrowing
sibling, whichever of the two keys the parent and the child set."""

import pytest
from core_testkit import admitted, gpu_pool, job, preempted, quota, start, state_of

from allotment.core.quota_tree import Reclaim, validate_tree


@pytest.mark.parametrize(
    ("parent", "claimant", "borrower"),
    [
        ({"*": (16, 16)}, {"a100": (8, 16)}, {"*": (8, 16)}),  # per-pool child under an all-pools parent
        ({"a100": (16, 16)}, {"*": (8, 16)}, {"a100": (8, 16)}),  # all-pools child under a per-pool parent
    ],
)
def test_a_child_gets_its_guarantee_back_from_a_borrowing_sibling(parent, claimant, borrower):
    quotas = [quota("X", gpu_in=parent), quota("A", "X", gpu_in=claimant, reclaim=Reclaim.ANY),
              quota("B", "X", gpu_in=borrower)]
    assert validate_tree(quotas) == []
    state = state_of(quotas, [gpu_pool("a100", 16), gpu_pool("h100", 16)])
    for i in range(16):  # B borrows the whole of a100, up to X's limit
        start(state, f"b{i}", "B", "a100", gpus=1)
    state.add_job(job("a1", "A", gpus=1, pools=("a100",)))
    decisions = state.cycle(100.0)
    assert len(preempted(decisions)) == 1 and admitted(decisions) == {"a1": "a100"}
