"""First start: built-in groups, priority classes and the default resource policy, the first platform admin, and the
default cluster `local` with its default pool and its default quota, so that the first admin (and anyone added to the
cluster later) can submit a job with no setup (DKube's single user out of the box)."""

from __future__ import annotations

import logging
import secrets
import string
import sys

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from allotment.identity.models import USERS_GROUP, ClusterRoleGrant, Group, User
from allotment.identity.service import create_user, ensure_builtin_groups
from allotment.inventory.models import Cluster
from allotment.inventory.service import DEFAULT_POOL, create_cluster
from allotment.policies.service import ensure_default as ensure_default_policy
from allotment.quotas import bindings
from allotment.quotas.priorities import ensure_defaults as ensure_quota_defaults
from allotment.quotas.service import QuotaInput, create_quota
from allotment.settings import Settings
from allotment.workloads.default_quota import DEFAULT_QUOTA

log = logging.getLogger("allotment.bootstrap")


def generated_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return secrets.choice(string.ascii_letters) + "".join(secrets.choice(alphabet) for _ in range(14)) + "7!"


def bootstrap(session: Session, settings: Settings) -> User | None:
    """Idempotent. Returns the admin it created, if it created one."""
    ensure_builtin_groups(session)
    ensure_quota_defaults(session)  # priority classes inference/training/interactive
    ensure_default_policy(session)
    admin = None
    if session.scalar(select(func.count()).select_from(User)) == 0:
        password = settings.bootstrap_admin_password
        generated = password is None
        if generated:
            password = generated_password()
        admin = create_user(
            session,
            email=settings.bootstrap_admin_email or "admin@example.com",
            username=settings.bootstrap_admin_username or "admin",
            password=password,
            full_name="Platform administrator",
            platform_admin=True,
        )
        if generated:
            # Shown once, on the console of the first start; never logged.
            sys.stderr.write(
                f"\n  allotment: created the first platform admin\n    username: {admin.username}\n"
                f"    password: {password}\n  Keep it now: it is not shown again.\n\n"
            )
            sys.stderr.flush()
        else:
            log.info("created the first platform admin %s from ALLOT_BOOTSTRAP_ADMIN_*", admin.username)
    if session.scalar(select(Cluster).where(Cluster.name == "local")) is None:
        first_admin = admin or session.scalar(select(User).order_by(User.id))
        cluster = create_cluster(session, "local", "local", first_admin.id if first_admin else None)
        if first_admin is not None:
            session.add(ClusterRoleGrant(cluster_id=cluster.id, user_id=first_admin.id, role="admin"))
        if settings.bootstrap_default_quota:
            default_quota(session, cluster)
    session.flush()
    return admin


def default_quota(session: Session, cluster: Cluster) -> None:
    """The quota `default` over the cluster's default pool, without limits, bound to the built-in `users` group
    (everyone): with a role on the cluster that is enough to submit to it (core.permissions.submit_refusal), and a
    job that names no quota goes there (workloads/default_quota.py)."""
    quota = create_quota(session, cluster.id, QuotaInput(
        name=DEFAULT_QUOTA, description=f"created at first start: every member of cluster {cluster.name} may "
                                        f"submit here, in pool {DEFAULT_POOL}",
        pools=[DEFAULT_POOL], provided={"name", "description", "pools"}))
    everyone = session.scalar(select(Group).where(Group.name == USERS_GROUP))
    if everyone is not None:
        bindings.bind(session, quota, group=everyone)
