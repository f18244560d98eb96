"""DevicePool finds the node with the fewest completely free devices that suffice without walking every count up
to the largest node's: a pool of one node of hundreds of devices (a what-if replay's pool) placed each whole-GPU job
after a walk of hundreds of empty counts. Placements are those of the walk."""

import random

import pytest

from allotment.core.devices import WHOLE, DevicePool


def walk(dp: DevicePool, n: int) -> int | None:
    """The plain definition: the first count from n up to the largest node's with a node in it."""
    for count in range(n, dp._max_per_node + 1):
        if dp._nodes_by_count.get(count):
            return count
    return None


@pytest.mark.parametrize(("nodes", "per_node"), [(1, 700), (3, 200), (40, 8), (90, 4)])
def test_the_fewest_free_devices_that_suffice_are_those_of_the_walk(nodes, per_node):
    rng = random.Random(nodes * per_node)
    dp = DevicePool("p", [(f"n{i}-d{j}", WHOLE, WHOLE, f"n{i}") for i in range(nodes) for j in range(per_node)])
    held: list = []
    for _ in range(600):
        for n in (1, 2, 4, 8, 16, 64, per_node):
            assert dp._fewest(n) == walk(dp, n)
        if held and rng.random() < 0.45:
            dp.release(held.pop(rng.randrange(len(held))))
            continue
        amount = rng.choice((1, 1, 1, 2, 4, 8)) * WHOLE if rng.random() < 0.9 else rng.choice((250, 500))
        expected = dp.choose(amount)
        shares = dp.place(amount)
        assert shares == expected
        if shares:
            held.append(shares)
