"""The jobs table's references to its cluster, owner, quota and placement pool, kept by the services that write
and delete them instead of by foreign keys.

Every job names these four, and a foreign key checks each of them for every row written: PostgreSQL runs one
`SELECT ... FOR KEY SHARE` through its trigger machinery per key and row, which was two thirds of the database's
work for a batch of new jobs and a quarter of its whole work in Kueue's large-scale benchmark (benchmarks/README.md,
eleventh round). The same guarantee is given here once per batch: the rows a batch names are locked the same way
(`hold`, in the batch's transaction), so none can be deleted until the batch commits, and a batch that names one
deleted meanwhile is refused whole (409). The scheduler loop does the same for the pools of a cycle's admissions
(scheduler/persist.py). What the keys did on delete is done by the deleting services: a cluster's jobs go with it
(`forget_cluster`), and a deleted quota or pool is cleared from the finished jobs that name it (`forget_quota`,
`forget_pool`; active jobs keep both from being deleted). Users are never deleted, only deactivated.
The other references of a job (profile, project, pinned pool, the service account that submitted it) are rarer and
stay foreign keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from sqlalchemy import ARRAY, Integer, any_, bindparam, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from allotment.errors import Conflict
from allotment.identity.models import User
from allotment.inventory.models import Cluster
from allotment.quotas.models import Quota
from allotment.workloads.models import Job


def _lock(column: Any, postgresql: bool) -> Any:
    ids = (column == any_(bindparam("ids", type_=ARRAY(Integer())))) if postgresql \
        else column.in_(bindparam("ids", expanding=True))
    return select(column).where(ids).with_for_update(read=True, key_share=True)


_statements: dict[tuple[str, bool], Any] = {}  # (column, PostgreSQL?) -> its locking read, built once


def locked(conn: Connection, column: Any, ids: AbstractSet[int]) -> set[int]:
    """Which of `ids` have a row of `column`'s table, each locked against deletion until the transaction ends:
    PostgreSQL's KEY SHARE, what a foreign key's check takes, the ids as one array parameter (a batch names hundreds
    of quotas); SQLite has one writer at a time and no row locks."""
    key = (str(column), conn.dialect.name == "postgresql")
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = _lock(column, key[1])
    return set(conn.execute(statement, {"ids": sorted(ids)}).scalars())


# (the rows' key, what the refusal calls it, the referenced column)
_NAMED = (("cluster_id", "cluster", Cluster.id), ("owner_id", "user", User.id), ("quota_id", "quota", Quota.id))


def hold(session: Session, rows: Sequence[dict[str, Any]], held_quotas: AbstractSet[int] = frozenset()) -> None:
    """Lock the cluster, owners and quotas that new job rows name, or refuse the batch when one is gone.
    `held_quotas`: quotas this transaction has locked already (the batch's look-up reads them with the lock)."""
    for key, what, column in _NAMED:
        ids = {row[key] for row in rows} - {None}
        if key == "quota_id":
            ids -= held_quotas
        if not ids:
            continue
        gone = ids - locked(session.connection(), column, ids)
        if gone:
            raise Conflict(f"the {what} these jobs name was deleted while they were submitted "
                           f"(id {', '.join(str(i) for i in sorted(gone))}); nothing was submitted")


def claim(session: Session, column: Any, row_id: int) -> None:
    """Lock a cluster, quota or pool for its deletion, before the checks that refuse it while jobs are active: a batch
    that holds it (or a scheduler cycle admitting into the pool) commits first, and the checks then see its jobs."""
    session.execute(select(column).where(column == row_id).with_for_update())


def forget_cluster(session: Session, cluster_id: int) -> int:
    """Delete a cluster's jobs (the caller has refused while any is active); returns how many."""
    return session.execute(delete(Job).where(Job.cluster_id == cluster_id)
                           .execution_options(synchronize_session=False)).rowcount


def forget_quota(session: Session, quota_id: int) -> int:
    """Clear a deleted quota from the jobs that name it (finished ones: an active job keeps its quota)."""
    return session.execute(update(Job).where(Job.quota_id == quota_id).values(quota_id=None)
                           .execution_options(synchronize_session=False)).rowcount


def forget_pool(session: Session, pool_id: int) -> int:
    """Clear a deleted pool from the jobs that were placed in it (finished ones: a running job keeps its pool)."""
    return session.execute(update(Job).where(Job.placed_pool_id == pool_id).values(placed_pool_id=None)
                           .execution_options(synchronize_session=False)).rowcount
