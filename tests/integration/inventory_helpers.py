"""Helpers for the inventory, quota and job tests: users made straight in the database (the users API is another
domain's), inventory reports, and jobs moved into states only the scheduler sets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from allotment.db import transaction, utcnow
from allotment.identity.models import ClusterRoleGrant, Group, GroupMember, User
from allotment.identity.service import create_user
from allotment.inventory.models import Cluster, Device, Node
from allotment.workloads.models import Job

PASSWORD = "Us3r-password!"
API = "/api/v1"


def sessions(client):
    return client.app.state.allot.sessions


def make_user(client, username: str, *, groups: tuple[str, ...] = (), cluster_role: str | None = None,
              policy: str | None = None, active: bool = True, cluster: str = "local") -> dict[str, str]:
    """Create a user (optionally in groups, with a role on `cluster` and a resource policy) and log in. Submitting
    to a quota takes a role on its cluster besides the binding (core.permissions.submit_refusal)."""
    with transaction(sessions(client)) as s:
        user = create_user(s, email=f"{username}@example.com", username=username, password=PASSWORD,
                           resource_policy=policy, is_active=True)
        for name in groups:
            group = s.scalar(select(Group).where(Group.name == name))
            if group is None:
                group = Group(name=name)
                s.add(group)
                s.flush()
            s.add(GroupMember(group_id=group.id, user_id=user.id))
        if cluster_role:
            found = s.scalar(select(Cluster).where(Cluster.name == cluster))
            s.add(ClusterRoleGrant(cluster_id=found.id, user_id=user.id, role=cluster_role))
    r = client.post(f"{API}/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    if not active:
        with transaction(sessions(client)) as s:
            s.scalar(select(User).where(User.username == username)).is_active = False
    return headers


def register_node(client, headers, name: str, model: str, count: int, cluster: str = "local",
                  cpu: str = "64", memory: str = "512Gi") -> dict[str, Any]:
    r = client.post(f"{API}/clusters/{cluster}/nodes", headers=headers, json={
        "name": name, "cpu": cpu, "memory": memory,
        "devices": [{"index": i, "model": model, "memory": "80Gi"} for i in range(count)],
    })
    assert r.status_code == 200, r.text
    return r.json()


def hold_devices(client, job_id: int, devices: list[str], pool: str, state: str = "running") -> None:
    """Put a job on devices (NODE:INDEX) as the scheduler would."""
    with transaction(sessions(client)) as s:
        job = s.get(Job, job_id)
        shares = []
        for ref in devices:
            node_name, _, index = ref.rpartition(":")
            device = s.scalar(select(Device).join(Node, Node.id == Device.node_id)
                              .where(Node.name == node_name, Device.index == int(index)))
            shares.append({"device_id": device.id, "node": node_name, "index": device.index, "milli": 1000})
            job.placed_pool_id = device.pool_id
        job.devices = shares
        job.state = state
        job.admitted_at = job.started_at = utcnow()


def set_state(client, job_id: int, state: str) -> None:
    with transaction(sessions(client)) as s:
        s.get(Job, job_id).state = state


def quota(client, headers, name: str, parent: str | None = None, gpu: str | None = None, limit: str | None = None,
          pool: str | None = None, cluster: str = "local", expect: int = 201, **extra) -> dict[str, Any]:
    resources = []
    if gpu is not None:
        resources.append({"resource": "gpu", "pool": pool, "guarantee": gpu, "limit": limit})
    body = {"name": name, "parent": parent, "resources": resources, **extra}
    r = client.post(f"{API}/clusters/{cluster}/quotas", headers=headers, json=body)
    assert r.status_code == expect, r.text
    return r.json()
