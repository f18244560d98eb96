"""A pool's device-seconds over a window, from its capacity history (a step function)."""

import pytest

from allotment.accounting.capacity import device_seconds

H = 3600.0


@pytest.mark.parametrize(("steps", "start", "end", "expected"), [
    ([], 0, 10 * H, 0),  # no history and no devices
    ([(float("-inf"), 8)], 0, 2 * H, 16 * H),  # the same count all along
    ([(H, 4)], 0, 3 * H, 8 * H),  # nothing before the pool's first row
    ([(0, 4), (H, 8)], 0, 2 * H, 12 * H),  # a change in the middle of the window
    ([(0, 4), (H, 8), (2 * H, 0)], 0, 5 * H, 12 * H),  # removed: 0 from then on
    ([(0, 4), (H, 8)], 1.5 * H, 2 * H, 4 * H),  # a window after the change
    ([(0, 4), (H, 8)], 0.5 * H, 0.75 * H, 1 * H),  # a window before it
    ([(0, 4), (5 * H, 8)], H, 2 * H, 4 * H),  # a later change does not reach back
])
def test_device_seconds_integrate_the_steps_inside_the_window(steps, start, end, expected):
    assert device_seconds(steps, start, end) == pytest.approx(expected)
