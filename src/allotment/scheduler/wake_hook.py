"""Wake the scheduler loop when a transaction that touched jobs or clusters commits. Routes also set the wake-up
before their transaction commits, so the loop's first look may not see the rows yet: this second wake-up, after the
commit, is the one that finds them. Installed by the loop in its own process, and by the API process when the loop
runs in another (scheduler/process.py)."""

from __future__ import annotations

import threading
from itertools import chain

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from allotment.inventory.models import Cluster
from allotment.workloads.models import Job

Hooks = list[tuple[str, object]]


def install_wake_hook(sessions: sessionmaker[Session], wakeup: threading.Event) -> Hooks:
    def after_flush(session: Session, _context) -> None:
        if any(isinstance(o, Job | Cluster) for o in chain(session.new, session.dirty)):
            session.info["allot_wake_scheduler"] = True

    def after_commit(session: Session) -> None:
        if session.info.pop("allot_wake_scheduler", False):
            wakeup.set()

    def after_rollback(session: Session) -> None:
        session.info.pop("allot_wake_scheduler", None)

    hooks: Hooks = [("after_flush", after_flush), ("after_commit", after_commit), ("after_rollback", after_rollback)]
    for target, fn in hooks:
        event.listen(sessions, target, fn)
    return hooks


def remove_wake_hook(sessions: sessionmaker[Session], hooks: Hooks) -> None:
    for target, fn in hooks:
        event.remove(sessions, target, fn)
    hooks.clear()
