"""A group whose last job left the queue is freed by reference counting: nothing of it is left for the cyclic
collector (the scheduler loop drops about a thousand such groups in a busy cycle)."""

import gc

from core_testkit import gpu_pool, job, quota

from allotment.core.admission import SchedulerState
from allotment.core.queues import Group, QueuedRec


def _cyclic_garbage(run) -> list:
    """The Group and QueuedRec objects that only the cyclic collector would free after ``run()``."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        return [o for o in gc.garbage if isinstance(o, (Group, QueuedRec))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_an_emptied_group_and_its_jobs_leave_no_cyclic_garbage():
    state = SchedulerState([quota("cohort", gpu_in={"a": 4}), quota("t", "cohort", gpu_in={"a": (2, 4)})],
                           [gpu_pool("a", 4)])

    def run():
        for i in range(3):  # admitted: the group empties through admissions
            state.add_job(job(f"a{i}", "t", gpus=1, pools=("a",)))
        state.cycle(1.0)
        for i in range(3):  # blocked (no GPU left), then cancelled: the group empties through removals
            state.add_job(job(f"w{i}", "t", gpus=2, pools=("a",)))
        state.cycle(2.0)
        for i in range(3):
            state.remove_job(f"w{i}")
        state.cycle(3.0)

    assert _cyclic_garbage(run) == []
    assert state.queued_count == 0 and len(state.running_ids()) == 3
