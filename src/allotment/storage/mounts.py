"""Jobs mount storage folders: `allot jobs submit --mount NAME[:PATH][:ro]`, or `mounts` in the API's job body.

Each mount is resolved when the job is submitted, as its owner sees the folder (their own, their group's, or one
shared with them), and stored with the job (jobs.mounts), so a later change of the folder's permission does not
change a queued job's mount; a folder an active job mounts cannot be trashed (folders.trash).

Where it appears:
- Local engine: at `<working directory>/<PATH>` (default `folders/<NAME>`, so `$HOME/folders/<NAME>`), bind-mounted
  (backends/sandbox.py), read-only when asked (`:ro`) or when the owner's permission on the folder is ro. PATH is
  relative to the working directory and may not leave it.
- Slurm engine: the folder's directory on the cluster's shared file system, `<cluster path>/<folder id>`, where the
  cluster path is the storage host's `cluster_paths[<cluster name>]`; a host without one for the cluster is refused.
- Both name each folder's path in the job's environment as ALLOT_FOLDER_<NAME> (upper case, other characters _).
- Other engines (Ray) do not mount folders: refused at submission.
- S3 folders on the local engine: refused at submission with a clear error. A job's sandbox has no S3 client of
  allotment's and staging whole folders to disk would copy data of any size behind the user's back; a job that needs
  an S3 folder's files downloads them itself (or the folder lives on a local host).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allotment.core.permissions import Principal
from allotment.errors import DomainError
from allotment.storage import folders
from allotment.storage.models import StorageHost
from allotment.storage.stores import clean_path

MAX_MOUNTS = 32


def parse_spec(text: str) -> dict[str, Any]:
    """NAME[:PATH][:ro] (also :rw) as the API's mount object."""
    parts = text.strip().split(":")
    read_only = False
    if len(parts) > 1 and parts[-1] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if not parts[0] or len(parts) > 2:
        raise ValueError(f"mount {text!r}: give NAME[:PATH][:ro]")
    return {"folder": parts[0], "path": parts[1] if len(parts) == 2 and parts[1] else None, "read_only": read_only}


def for_job(session, principal: Principal, cluster_id: int, specs: list[Any],
            err: Callable[[str, str], None]) -> list[dict[str, Any]] | None:
    """resolve() for a job of the cluster (its name and engine read here)."""
    from sqlalchemy import select

    from allotment.inventory.models import Cluster

    row = session.execute(select(Cluster.name, Cluster.backend).where(Cluster.id == cluster_id)).first()
    if row is None:
        return None
    return resolve(session, principal, row.name, row.backend, specs, err)


def resolve(session, principal: Principal, cluster_name: str, engine: str, specs: list[Any],
            err: Callable[[str, str], None]) -> list[dict[str, Any]] | None:
    """The job's mounts as stored, or None after reporting each problem through `err(field, message)`."""
    if not isinstance(specs, list) or len(specs) > MAX_MOUNTS:
        err("mounts", f"must be a list of at most {MAX_MOUNTS} mounts")
        return None
    out, targets, failed = [], set(), False
    for index, spec in enumerate(specs):
        field = f"mounts[{index}]"
        try:
            spec = parse_spec(spec) if isinstance(spec, str) else dict(spec)
        except (TypeError, ValueError) as exc:
            err(field, str(exc))
            failed = True
            continue
        name = str(spec.get("folder") or "").strip()
        try:
            found = folders.resolve(session, principal, name, trashed=False)
            folders.require(principal, found, "read")
            target = clean_path(spec.get("path") or f"folders/{found.folder.name}", f"{field}.path")
        except DomainError as exc:
            err(field, exc.errors[0].message if exc.errors else exc.detail)
            failed = True
            continue
        if target in targets:
            err(f"{field}.path", f"{target} is the target of another mount")
            failed = True
            continue
        targets.add(target)
        host = session.get(StorageHost, found.folder.host_id)
        read_only = bool(spec.get("read_only")) or (found.via != "admin" and found.access == "ro")
        mount = {"folder_id": found.folder.id, "folder": found.folder.name, "host": host.name, "kind": host.kind,
                 "root": host.root, "target": target, "read_only": read_only}
        if engine == "slurm":
            base = (host.cluster_paths or {}).get(cluster_name)
            if base is None:
                err(field, f"storage host {host.name} has no path on cluster {cluster_name}'s shared file system "
                           f"(an admin sets it: allot folders hosts update {host.name} --cluster-path "
                           f"{cluster_name}=PATH)")
                failed = True
                continue
            mount["cluster_path"] = f"{base.rstrip('/')}/{found.folder.id}"
        elif engine not in ("local", "simulated"):
            err(field, f"the {engine} engine does not mount storage folders (the local and Slurm engines do)")
            failed = True
            continue
        elif host.kind != "local":
            err(field, f"folder {found.folder.name} is on {host.kind} host {host.name}: the {engine} engine mounts only "
                       f"folders of local hosts (download the files in the job instead)")
            failed = True
            continue
        out.append(mount)
    return None if failed else out
