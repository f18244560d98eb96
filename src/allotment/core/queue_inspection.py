"""Questions about the queue that the scheduler loop and the API ask between cycles: why a job waits, and which
jobs wait together. Part of admission.SchedulerState (split out to keep each file readable)."""

from __future__ import annotations

from allotment.core.blocking import Blocking
from allotment.core.explain import combine
from allotment.core.model import Wait, WaitCode
from allotment.core.queues import Group


class QueueInspection(Blocking):
    def queue_group(self, job_id: str) -> tuple[tuple, Wait | None] | None:
        """(key of a queued job's group, the group's current Wait or None while it is not blocked); O(1).
        Jobs of one group (same quota and shape) wait for the same reason, so the loop can show the head's reason on
        every member without explaining each one."""
        rec = self._queued.get(job_id)
        if rec is None or rec.group is None:
            return None
        group = rec.group
        return group.shape, (group.last_wait if group.parked else None)

    def group_wait(self, job_id: str) -> Wait | None:
        """The current Wait of a queued job's group (its head's), None while it is not blocked: queue_group's, with
        today's numbers where the group waits for room under a limit (it is not examined at every end there)."""
        rec = self._queued.get(job_id)
        if rec is None or rec.group is None:
            return None
        return self._current_wait(rec.group)

    def group_members(self, key: tuple) -> list[str]:
        """Ids of the queued jobs of the group ``key`` (from queue_group); O(group size)."""
        group = self._groups.get(key)
        return [r.id for r in group.members()] if group is not None else []

    def explain(self, job_id: str) -> Wait | None:
        """Why a queued job waits (None when it is not queued)."""
        if job_id in self._invalid:
            return self._invalid[job_id]
        rec = self._queued.get(job_id)
        if rec is None:
            return None
        group = rec.group
        assert group is not None
        head = group.head()
        quota = self._tree.ids[group.quota]
        last = self._current_wait(group)
        if head is rec:
            if last is not None:
                return last
            return Wait(job_id, "pending", f"quota {quota}: next in line, waiting for the next scheduling cycle")
        mine, recs = rec.entry, group.recs
        ahead = sum(1 for e in group.heap if e < mine and recs[e].alive)
        assert head is not None
        why = last.message if last is not None else "it is next in line"
        return Wait(
            job_id, WaitCode.QUEUED_BEHIND,
            f"quota {quota}: queued behind {ahead} identical job(s) with higher priority or earlier submission; "
            f"the first, job {head.id}, waits: {why}",
        )

    def _current_wait(self, group: Group) -> Wait | None:
        """A parked group's Wait, with today's numbers where it waits for room under a limit: such a group is not
        examined at every end under the limit (ParkIndex, limit rooms), so its last Wait may show the usage of its
        last examination."""
        wait = group.last_wait
        if wait is None or not group.parked:
            return None
        if not group.park_needs or not group.park_blockers or group.last_sig is None:
            return wait
        code, message = combine(self._tree, group.park_blockers, self._now, group.last_sig[-1][1])
        return Wait(wait.job_id, code, message)
