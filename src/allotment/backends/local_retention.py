"""Housekeeping of the local engine's finished jobs: their working directories (`<work root>/<job id>`, where a
job may leave gigabytes) and their run records (`<jobs dir>/<job id>/`) are deleted once the job ended more than
ALLOT_JOB_LOG_RETENTION_DAYS ago, the retention of its log (0 keeps them for ever). One retention for all three:
a job's log, its files and its records describe the same run and go together. Run by `LocalRetention`, the hourly
thread of the log retention sweep (workloads/logs.py), started with the server (services.py).

Only jobs of local clusters that the database says ended are touched: a directory named by another id (or by no
job) is left alone. Directories are deleted with shutil.rmtree, which on Linux works through file descriptors and
never follows a symbolic link a job left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.backends.sandbox import work_root_of
from allotment.db import utcnow
from allotment.inventory.models import Cluster
from allotment.settings import Settings
from allotment.workloads.logs import LogRetention
from allotment.workloads.models import FINAL_STATES, Job

log = logging.getLogger("allotment.backends.local")

_ID_BATCH = 500


def _job_dirs(root: Path) -> dict[int, Path]:
    try:
        with os.scandir(root) as entries:
            return {int(e.name): Path(e.path) for e in entries
                    if e.name.isdigit() and e.is_dir(follow_symlinks=False)}
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return {}


def local_job_dirs(settings: Settings) -> list[Path]:
    """Where the local engine keeps per-job directories: working directories and run records."""
    data_dir = Path(settings.data_dir).resolve()
    return [work_root_of(data_dir, settings.local_work_dir), data_dir / "jobs"]


def delete_expired_job_dirs(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Delete the working directories and run records of local jobs that ended more than the retention ago;
    returns how many directories went."""
    days = settings.job_log_retention_days
    if not days:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    found: dict[int, list[Path]] = {}
    for root in local_job_dirs(settings):
        for job_id, path in _job_dirs(root).items():
            found.setdefault(job_id, []).append(path)
    removed = 0
    ids = sorted(found)
    for i in range(0, len(ids), _ID_BATCH):
        expired = session.execute(
            select(Job.id).join(Cluster, Cluster.id == Job.cluster_id).where(
                Job.id.in_(ids[i:i + _ID_BATCH]), Cluster.backend == "local", Job.state.in_(FINAL_STATES),
                Job.finished_at < cutoff)).scalars().all()
        for job_id in expired:
            for path in found[job_id]:
                try:
                    shutil.rmtree(path)
                    removed += 1
                except OSError as exc:
                    log.warning("local retention: cannot delete %s: %s", path, exc)
    return removed


class LocalRetention(LogRetention):
    """The hourly sweep of delete_expired_job_dirs (the log retention's thread and schedule)."""

    def sweep(self) -> int:
        with self.sessions() as session:
            removed = delete_expired_job_dirs(session, self.settings)
        if removed:
            log.info("local retention: deleted %d directory(ies) of jobs that ended more than %d day(s) ago", removed,
                     self.settings.job_log_retention_days)
        return removed
