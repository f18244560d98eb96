"""Building each cluster's engine in the scheduler loop (a part of loop.Scheduler, kept apart for size).

An engine is built from its cluster's stored settings (scheduler/engines.py cluster_backend, secrets opened) when the
loop first sees the cluster, and again whenever the settings change (Cluster.engine_revision): the old engine is
closed (the Slurm and Ray engines leave their jobs running) and the new one is treated like the engine of a server
that just started: the cluster's state is loaded again, its holding jobs are asked about (recovery.py) and its
orphan runs stopped. An engine that cannot be built leaves the cluster's jobs waiting with the reason, and is tried
again every reconcile.BUILD_RETRY_S. Remote engines (Slurm, Ray) report their nodes every reconcile.INVENTORY_S.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.backends.base import Backend
from allotment.inventory.models import Cluster
from allotment.scheduler.engines import cluster_backend, register_inventory
from allotment.scheduler.reconcile import INVENTORY_S, REMOTE, first_line, unavailable

if TYPE_CHECKING:
    from allotment.api.state import AppState
    from allotment.scheduler.reconcile import EngineWatch
    from allotment.scheduler.runtime import ClusterRuntime

log = logging.getLogger("allotment.scheduler")


class EngineSetup:
    state: AppState
    backends: dict[int, Backend | None]
    runtimes: dict[int, ClusterRuntime]
    watch: EngineWatch
    _fresh_engines: set[int]
    _unswept: set[int]

    def _ensure_backends(self, session: Session, rows: list, now: float) -> bool:
        """Build each cluster's engine from its stored settings (again when they change: Cluster.engine_revision),
        and have remote engines report their nodes periodically (reconcile.py). True when something was written."""
        written = False
        for row in rows:
            revision = row.engine_revision or 0
            if self.watch.needs_build(row.id, revision, now):
                written = self._build(session, row, revision, now) or written
            backend = self.backends.get(row.id)
            state = self.watch.state(row.id)
            if backend is None or row.backend not in REMOTE:
                continue
            if now - state.inventory_at < INVENTORY_S and not getattr(backend, "outage", None):
                continue
            state.inventory_at = now
            written = self._register(session, row, backend, now) or written
        return written

    def _build(self, session: Session, row, revision: int, now: float) -> bool:
        if row.id in self.backends:
            log.info("scheduler: cluster %s: its engine settings changed; its engine is built again", row.name)
            self._close(row.id)
        backend = cluster_backend(session, self.state.settings, self.state.secret_key, row.id, row.backend)
        error = None
        if backend is None:
            error = session.scalar(select(Cluster.status_error).where(Cluster.id == row.id))
        self.watch.built(row.id, revision, now, error)
        self.backends[row.id] = backend
        self.runtimes.pop(row.id, None)  # loaded again with the new engine: recovered as after a restart
        if backend is None:
            return True
        self._fresh_engines.add(row.id)
        self._unswept.add(row.id)
        if row.backend == "local" and row.name != self.state.settings.local_cluster:
            return True
        self.watch.state(row.id).inventory_at = now
        self._register(session, row, backend, now)
        return True

    def _register(self, session: Session, row, backend: Backend, now: float) -> bool:
        """The engine's nodes and devices (a drained or down node's devices unhealthy); an outage or a failure
        is the engine's health (reconcile.py), never a stop of the loop."""
        try:
            nodes = backend.inventory()
        except Exception as exc:  # noqa: BLE001 - the engine's health says it; the cluster runs with what it has
            error = unavailable(backend, exc)
            rt = self.runtimes.get(row.id)
            if error is not None and rt is not None:
                rt.engine_down(error)
            elif error is None:
                log.warning("scheduler: cluster %s: its engine could not report its inventory: %s", row.name,
                            first_line(exc))
                self.watch.failed(row.id, exc, now)
            return False
        try:
            register_inventory(session, row.id, backend, nodes)
        except Exception as exc:  # a bad report must not stop scheduling: the cluster runs with what it has
            log.exception("scheduler: cluster %s: could not register the engine's inventory", row.name)
            session.rollback()
            self.watch.failed(row.id, exc, now)
            self.watch.unreported()
            return False
        self.watch.succeeded(row.id)
        return True

    def _close(self, cid: int) -> None:
        backend = self.backends.pop(cid, None)
        self.watch.forget(cid)
        self._fresh_engines.discard(cid)
        self._unswept.discard(cid)
        if backend is not None:
            try:
                backend.close()
            except Exception:  # a failed close must not keep the new engine from being built
                log.exception("scheduler: could not close the engine of cluster %s", cid)
