"""Models and datasets API: /models and /datasets, the same routes for each kind. Entries are versioned per name in
a project; registering a name again adds its next version. Every route asks projects.access about the entry's
project's workspace; every change is audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from allotment.api.deps import DB, client_address, require
from allotment.api.fields import IdPath
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.core.projects import descendant_ids
from allotment.inventory.service import find_cluster
from allotment.projects import access, artifacts, views
from allotment.projects import service as projects
from allotment.projects.models import Project
from allotment.projects.schemas import ArtifactCreate, ArtifactDeleted, ArtifactList, ArtifactOut
from allotment.workspaces.models import Workspace

router = APIRouter()
Signed = Annotated[Principal, require(AUTHENTICATED)]
Filter = Annotated[str | None, Query(max_length=256)]
ProjectFilter = Annotated[str | None, Query(min_length=1, max_length=256, pattern=r"\S", description=(
    "a project: its id or WORKSPACE/PATH in `cluster`; one that names no project is 404"))]


def project_of(db: Session, principal: Principal, ref: str, cluster: str | None, action: str,
               field: str = "project") -> tuple[Project, Workspace]:
    """The project a body or filter names (id, or WORKSPACE/PATH in `cluster`), once access allows `action`."""
    cluster_id = find_cluster(db, cluster or "local").id
    project = projects.resolve(db, cluster_id, ref, field)
    return project, access.check_project(db, principal, project, action)


def _routes(kind: str, plural: str) -> dict[str, Callable[..., Any]]:
    def load(db: Session, principal: Principal, entry_id: int, action: str):
        entry = artifacts.get(db, kind, entry_id)
        project = projects.get_project(db, entry.project_id)
        return entry, project, access.check_project(db, principal, project, action, (kind, entry.id))

    @router.get(f"/{plural}", response_model=ArtifactList, tags=[plural], name=f"list_{plural}",
                summary=f"List {plural}")
    def list_entries(principal: Signed, db: DB, project: ProjectFilter = None, cluster: Filter = None,
                     name: Annotated[str | None, Query(max_length=64, description="one name: its latest version")]
                     = None,
                     search: Annotated[str | None, Query(max_length=256, description=(
                         "in names, descriptions, URIs and metadata; KEY=VALUE matches one metadata key"))] = None,
                     include_subprojects: bool = False) -> ArtifactList:
        """The latest version of each name, with how many versions it has: of one project (and its sub-projects when
        asked), or of every project the caller may read (of one cluster when given)."""
        if project is not None:
            found, _ = project_of(db, principal, project, cluster, "read")
            ids = [found.id]
            if include_subprojects:
                ids += descendant_ids(projects.parent_map(db, found.workspace_id), found.id)
        else:
            cluster_id = find_cluster(db, cluster).id if cluster else None
            readable = access.readable_workspaces(db, principal, cluster_id)
            ids = list(projects.paths(db, readable))
        latest = artifacts.list_latest(db, kind, ids, search, name)
        shown = {id(e) for e in access.visible(db, principal, [e for e, _ in latest], kind)}  # the access rules
        rows = views.artifact_rows(db, kind, [(e, n) for e, n in latest if id(e) in shown])
        return ArtifactList(items=[ArtifactOut(**r) for r in rows], total=len(rows))

    @router.post(f"/{plural}", response_model=ArtifactOut, status_code=201, tags=[plural],
                 name=f"register_{kind}", summary=f"Register a {kind} (its next version)")
    def register(body: ArtifactCreate, principal: Signed, db: DB, request: Request) -> ArtifactOut:
        """Members of the project's workspace from `member` up register; a name registered before gets its next
        version."""
        project, workspace = project_of(db, principal, body.project, body.cluster, "modify")
        entry = artifacts.register(db, kind, project, body.name, body.uri, body.description, body.metadata,
                                   created_by_id=principal.id)
        row = views.artifact_rows(db, kind, [(entry, None)])[0]
        audit.record(db, principal, f"{kind}.register", kind,
                     f"{workspace.name}/{row['project']}:{entry.name}@{entry.version}", entry.id,
                     changes={"after": {"uri": entry.uri, "version": entry.version, "metadata": entry.meta}},
                     source=client_address(request))
        return ArtifactOut(**row)

    @router.get(f"/{plural}/{{entry_id}}", response_model=ArtifactOut, tags=[plural], name=f"get_{kind}",
                summary=f"One {kind} version")
    def get_entry(entry_id: IdPath, principal: Signed, db: DB) -> ArtifactOut:
        entry, _, _ = load(db, principal, entry_id, "read")
        count = len(artifacts.versions(db, kind, entry.project_id, entry.name))
        return ArtifactOut(**views.artifact_rows(db, kind, [(entry, count)])[0])

    @router.get(f"/{plural}/{{entry_id}}/versions", response_model=ArtifactList, tags=[plural],
                name=f"{kind}_versions", summary=f"Every version of a {kind}'s name, newest first")
    def list_versions(entry_id: IdPath, principal: Signed, db: DB) -> ArtifactList:
        entry, _, _ = load(db, principal, entry_id, "read")
        found = artifacts.versions(db, kind, entry.project_id, entry.name)
        rows = views.artifact_rows(db, kind, [(e, len(found)) for e in found])
        return ArtifactList(items=[ArtifactOut(**r) for r in rows], total=len(rows))

    @router.delete(f"/{plural}/{{entry_id}}", response_model=ArtifactDeleted, tags=[plural],
                   name=f"delete_{kind}", summary=f"Delete a {kind} version (or every version of its name)")
    def delete_entry(entry_id: IdPath, principal: Signed, db: DB, request: Request,
                     all_versions: Annotated[bool, Query(description="every version of the name")] = False
                     ) -> ArtifactDeleted:
        """Only the entry goes: nothing is deleted where it points."""
        entry, project, workspace = load(db, principal, entry_id, "modify")
        name, version, uri = entry.name, entry.version, entry.uri
        target = f"{workspace.name}/{projects.path(db, project)}:{name}"
        gone = artifacts.delete_entry(db, kind, entry, all_versions)
        audit.record(db, principal, f"{kind}.delete", kind, target, entry_id,
                     changes={"before": {"version": version, "uri": uri}, "deleted_versions": gone},
                     source=client_address(request))
        return ArtifactDeleted(name=name, deleted_versions=gone)

    return {"list": list_entries, "register": register, "get": get_entry, "versions": list_versions,
            "delete": delete_entry}


# The route functions of each kind, for the console's pages (which call them as the API does).
ROUTES = {"model": _routes("model", "models"), "dataset": _routes("dataset", "datasets")}
