"""`allot projects ...`, `allot models ...` and `allot datasets ...`: a workspace's project tree, and the models and
datasets registered in its projects (named, versioned entries pointing at a folder path or a storage URI).

A PROJECT is its id or WORKSPACE/PATH (vision/detection/yolo) in the cluster given by --cluster (default local)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from allotment.cli.client import Client, CliError
from allotment.cli.inputs import confirm
from allotment.cli.output import console, emit_json, show, table, when

CLUSTER = typer.Option("local", "--cluster", help="the cluster of the project's workspace")
JSON = typer.Option(False, "--json")
PROJECT_HELP = "the project: its id, or WORKSPACE/PATH such as vision/detection/yolo"


def _split(ref: str) -> tuple[str, str]:
    workspace, sep, path = ref.strip().partition("/")
    if not sep or not path.strip("/") or not workspace:
        raise typer.BadParameter(f"'{ref}': give a project id or WORKSPACE/PATH (vision/detection)",
                                 param_hint="PROJECT")
    return workspace, path.strip("/")


def find_project(client: Client, ref: str, cluster: str) -> dict[str, Any]:
    """The project a PROJECT argument names (id, or WORKSPACE/PATH looked up in the cluster)."""
    if ref.strip().isascii() and ref.strip().isdigit():
        return client.get(f"projects/{ref.strip()}")
    workspace, path = _split(ref)
    items = client.get("projects", params={"cluster": cluster, "workspace": workspace, "path": path})["items"]
    if not items:
        raise CliError(f"no project '{path}' in workspace {workspace}")
    return items[0]


def _tree_row(p: dict[str, Any]) -> dict[str, Any]:
    counts = p["counts"]
    return {"id": p["id"], "workspace": p["workspace"], "project": "  " * p["depth"] + p["name"],
            "path": p["path"], "jobs": counts["jobs"], "models": counts["models"], "datasets": counts["datasets"],
            "description": p.get("description") or ""}


def _metadata(pairs: list[str] | None, raw: str | None) -> dict[str, Any] | None:
    """--meta KEY=VALUE (repeatable; VALUE read as JSON when it is JSON: 0.61, true, [1,2], else as text) and
    --metadata-json '{...}' (merged, --meta last)."""
    found: dict[str, Any] = {}
    if raw is not None:
        try:
            found = json.loads(raw)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--metadata-json") from None
        if not isinstance(found, dict):
            raise typer.BadParameter("give a JSON object", param_hint="--metadata-json")
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"'{pair}': give KEY=VALUE", param_hint="--meta")
        try:
            found[key.strip()] = json.loads(value)
        except ValueError:
            found[key.strip()] = value
    return found if (raw is not None or pairs) else None


def register(app: typer.Typer) -> None:
    _projects(app)
    for kind, plural in (("model", "models"), ("dataset", "datasets")):
        _artifacts(app, kind, plural)


def _projects(app: typer.Typer) -> None:
    projects = typer.Typer(help="Projects of a workspace: a tree that owns jobs, models and datasets.",
                           no_args_is_help=True)
    app.add_typer(projects, name="projects")

    @projects.command("create")
    def create(path: Annotated[str, typer.Argument(help="WORKSPACE/PATH of the new project: its parent's path, "
                                                        "then its name (vision/detection/yolo)")],
               description: str = typer.Option(None, "--description"), cluster: str = CLUSTER,
               json_: bool = JSON) -> None:
        """Create a project; its parent (every segment of PATH but the last) must exist."""
        workspace, project_path = _split(path)
        *parents, name = project_path.split("/")
        body: dict[str, Any] = {"cluster": cluster, "workspace": workspace, "name": name}
        if parents:
            body["parent"] = "/".join(parents)
        if description is not None:
            body["description"] = description
        created = Client().post("projects", json=body)
        if json_:
            emit_json(created)
            return
        console.print(f"project {created['workspace']}/{created['path']} created (id {created['id']})",
                      highlight=False)

    @projects.command("list")
    def list_projects(workspace: str = typer.Option(None, "--workspace", help="one workspace's projects"),
                      search: str = typer.Option(None, "--search", help="in names and descriptions"),
                      cluster: str = typer.Option(None, "--cluster", help="one cluster's workspaces"),
                      json_: bool = JSON) -> None:
        """The projects of your workspaces as a tree, with their jobs, models and datasets."""
        params = {k: v for k, v in {"workspace": workspace, "search": search, "cluster": cluster or
                                    ("local" if workspace else None)}.items() if v is not None}
        items = Client().get("projects", params=params)["items"]
        if json_:
            emit_json(items)
            return
        table([_tree_row(p) for p in items], [("id", "ID"), ("workspace", "WORKSPACE"), ("project", "PROJECT"),
                                               ("jobs", "JOBS"), ("models", "MODELS"), ("datasets", "DATASETS"),
                                               ("description", "DESCRIPTION")], empty="no projects")

    @projects.command("show")
    def show_one(project: Annotated[str, typer.Argument(help=PROJECT_HELP)], cluster: str = CLUSTER,
                 json_: bool = JSON) -> None:
        """A project with its counts, sub-projects, and latest models and datasets."""
        client = Client()
        found = find_project(client, project, cluster)
        if json_:
            emit_json(found)
            return
        counts = found["counts"]
        models = client.get("models", params={"project": str(found["id"])})["items"]
        datasets = client.get("datasets", params={"project": str(found["id"])})["items"]
        show({"id": found["id"], "path": f"{found['workspace']}/{found['path']}", "cluster": found["cluster"],
              "description": found.get("description") or "", "sub-projects": counts["subprojects"],
              "jobs": counts["jobs"],
              "models": ", ".join(f"{m['name']}@{m['version']}" for m in models) or "-",
              "datasets": ", ".join(f"{d['name']}@{d['version']}" for d in datasets) or "-",
              "created": f"{when(found['created_at'])} by {found.get('created_by') or '-'}"}, False)

    @projects.command("jobs")
    def jobs(project: Annotated[str, typer.Argument(help=PROJECT_HELP)],
             limit: int = typer.Option(50, "--limit", min=1, max=500), cluster: str = CLUSTER,
             json_: bool = JSON) -> None:
        """The project's latest jobs (not its sub-projects'), newest first."""
        client = Client()
        found = find_project(client, project, cluster)
        listed = client.get(f"projects/{found['id']}/jobs", params={"limit": limit})
        if json_:
            emit_json(listed["items"])
            return
        table([{**j, "submitted": when(j["submitted_at"]), "name": j.get("name") or ""} for j in listed["items"]],
              [("id", "ID"), ("name", "NAME"), ("owner", "OWNER"), ("quota", "QUOTA"), ("state", "STATE"),
               ("submitted", "SUBMITTED")], empty=f"no jobs in project {found['workspace']}/{found['path']}")

    @projects.command("rename")
    def rename(project: Annotated[str, typer.Argument(help=PROJECT_HELP)], new_name: str,
               cluster: str = CLUSTER) -> None:
        """Rename a project (names are unique among its siblings)."""
        client = Client()
        found = find_project(client, project, cluster)
        done = client.patch(f"projects/{found['id']}", json={"name": new_name})
        console.print(f"project {found['workspace']}/{found['path']} renamed to {done['workspace']}/{done['path']}",
                      highlight=False)

    @projects.command("describe")
    def describe(project: Annotated[str, typer.Argument(help=PROJECT_HELP)], description: str,
                 cluster: str = CLUSTER) -> None:
        """Set a project's description."""
        client = Client()
        found = find_project(client, project, cluster)
        client.patch(f"projects/{found['id']}", json={"description": description})
        console.print(f"updated the description of project {found['workspace']}/{found['path']}", highlight=False)

    @projects.command("move")
    def move(project: Annotated[str, typer.Argument(help=PROJECT_HELP)],
             parent: Annotated[str | None, typer.Argument(help="the new parent, in the same workspace (id or "
                                                               "WORKSPACE/PATH); omit with --top")] = None,
             top: bool = typer.Option(False, "--top", help="move to the top of the workspace"),
             cluster: str = CLUSTER) -> None:
        """Move a project, with its sub-projects, jobs, models and datasets, under another project or to the top."""
        if (parent is None) == (not top):
            raise typer.BadParameter("give the new parent or --top, not both", param_hint="PARENT")
        client = Client()
        found = find_project(client, project, cluster)
        new_parent = None if top else str(find_project(client, parent, cluster)["id"])
        done = client.patch(f"projects/{found['id']}", json={"parent": new_parent})
        console.print(f"project {found['workspace']}/{found['path']} moved to {done['workspace']}/{done['path']}",
                      highlight=False)

    @projects.command("delete")
    def delete(project: Annotated[str, typer.Argument(help=PROJECT_HELP)],
               force: bool = typer.Option(False, "--force", help="also delete its sub-projects, models and datasets "
                                                                 "(entries only); its jobs stay without a project"),
               yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation (with --force)"),
               cluster: str = CLUSTER, json_: bool = JSON) -> None:
        """Delete a project. Refused while it holds sub-projects, models, datasets or jobs, unless --force; even
        then refused while any of its jobs is unfinished."""
        client = Client()
        found = find_project(client, project, cluster)
        label = f"{found['workspace']}/{found['path']}"
        if force:
            confirm(f"Delete project {label} with its sub-projects, models and datasets?", yes,
                    f"project {label} was kept")
        done = client.delete(f"projects/{found['id']}", params={"force": "true"} if force else None)
        if json_:
            emit_json(done)
            return
        extra = [f"{n} {what}" for what, n in (("sub-projects", done["deleted_projects"] - 1),
                                               ("model versions", done["deleted_model_versions"]),
                                               ("dataset versions", done["deleted_dataset_versions"])) if n]
        kept = f"; {done['detached_jobs']} job(s) kept without a project" if done["detached_jobs"] else ""
        console.print(f"project {label} deleted" + (f" with {', '.join(extra)}" if extra else "") + kept,
                      highlight=False)


def _artifacts(app: typer.Typer, kind: str, plural: str) -> None:
    group = typer.Typer(help=f"Registered {plural}: named, versioned entries pointing at a folder path or a storage "
                             f"URI, with metadata.", no_args_is_help=True)
    app.add_typer(group, name=plural)
    columns = [("id", "ID"), ("project", "PROJECT"), ("name", "NAME"), ("version", "VERSION"),
               ("versions", "VERSIONS"), ("uri", "URI"), ("metadata", "METADATA")]

    def row(e: dict[str, Any]) -> dict[str, Any]:
        return {**e, "project": f"{e['workspace']}/{e['project']}",
                "metadata": json.dumps(e.get("metadata") or {}, ensure_ascii=False) if e.get("metadata") else ""}

    def latest(client: Client, project: str, name: str, cluster: str) -> dict[str, Any]:
        items = client.get(plural, params={"project": project, "cluster": cluster, "name": name})["items"]
        if not items:
            raise CliError(f"no {kind} '{name}' in project {project}")
        return items[0]

    def version_of(client: Client, entry: dict[str, Any], version: int | None) -> dict[str, Any]:
        if version is None:
            return entry
        found = [v for v in client.get(f"{plural}/{entry['id']}/versions")["items"] if v["version"] == version]
        if not found:
            raise CliError(f"{kind} {entry['name']} has no version {version}")
        return found[0]

    @group.command("register", help=f"Register a {kind}: a name registered before in the project gets its next "
                                    f"version.")
    def register_entry(project: Annotated[str, typer.Argument(help=PROJECT_HELP)], name: str,
                       uri: Annotated[str, typer.Argument(help="an absolute folder path, or s3://, gs://, az://, "
                                                               "hdfs:// or a git URL")],
                       description: str = typer.Option(None, "--description"),
                       meta: Annotated[list[str] | None, typer.Option(
                           "--meta", help="KEY=VALUE metadata (repeatable; JSON values such as 0.61 or true are "
                                          "read as JSON)")] = None,
                       metadata_json: str = typer.Option(None, "--metadata-json", help="metadata as a JSON object"),
                       cluster: str = CLUSTER, json_: bool = JSON) -> None:
        body: dict[str, Any] = {"project": project, "cluster": cluster, "name": name, "uri": uri}
        if description is not None:
            body["description"] = description
        metadata = _metadata(meta, metadata_json)
        if metadata is not None:
            body["metadata"] = metadata
        entry = Client().post(plural, json=body)
        if json_:
            emit_json(entry)
            return
        console.print(f"{kind} {entry['name']} version {entry['version']} registered in project "
                      f"{entry['workspace']}/{entry['project']} (id {entry['id']})", highlight=False)

    @group.command("list")
    def list_entries(project: Annotated[str | None, typer.Argument(help=PROJECT_HELP + "; omitted: every "
                                                                   "project you may read")] = None,
                     search: str = typer.Option(None, "--search", help="in names, descriptions, URIs and metadata; "
                                                                       "KEY=VALUE matches one metadata key"),
                     recursive: bool = typer.Option(False, "--recursive", "-r", help="with the sub-projects'"),
                     cluster: str = CLUSTER, json_: bool = JSON) -> None:
        """The latest version of each name, with how many versions it has."""
        params: dict[str, Any] = {"cluster": cluster}
        if project is not None:
            params["project"] = project
            params["include_subprojects"] = str(recursive).lower()
        if search is not None:
            params["search"] = search
        items = Client().get(plural, params=params)["items"]
        if json_:
            emit_json(items)
            return
        table([row(e) for e in items], columns, empty=f"no {plural}")

    @group.command("show")
    def show_entry(project: Annotated[str, typer.Argument(help=PROJECT_HELP)], name: str,
                   version: int = typer.Option(None, "--version", help="this version (default: the latest)"),
                   cluster: str = CLUSTER, json_: bool = JSON) -> None:
        """One version of a name (the latest unless --version) with its URI and metadata."""
        client = Client()
        entry = version_of(client, latest(client, project, name, cluster), version)
        if json_:
            emit_json(entry)
            return
        show({"id": entry["id"], "name": entry["name"], "version": entry["version"], "uri": entry["uri"],
              "project": f"{entry['workspace']}/{entry['project']}", "description": entry.get("description") or "",
              "metadata": json.dumps(entry.get("metadata") or {}, ensure_ascii=False),
              "registered": f"{when(entry['created_at'])} by {entry.get('created_by') or '-'}"}, False)

    @group.command("versions")
    def versions(project: Annotated[str, typer.Argument(help=PROJECT_HELP)], name: str, cluster: str = CLUSTER,
                 json_: bool = JSON) -> None:
        """Every version of a name, newest first."""
        client = Client()
        items = client.get(f"{plural}/{latest(client, project, name, cluster)['id']}/versions")["items"]
        if json_:
            emit_json(items)
            return
        table([row(e) | {"registered": when(e["created_at"]), "by": e.get("created_by") or ""} for e in items],
              [("version", "VERSION"), ("id", "ID"), ("uri", "URI"), ("metadata", "METADATA"),
               ("registered", "REGISTERED"), ("by", "BY")])

    @group.command("delete")
    def delete_entry(project: Annotated[str, typer.Argument(help=PROJECT_HELP)], name: str,
                     version: int = typer.Option(None, "--version", help="this version only (default: the latest)"),
                     all_versions: bool = typer.Option(False, "--all-versions", help="every version of the name"),
                     cluster: str = CLUSTER) -> None:
        """Delete a version (or every version) of a name. Only the entry goes: nothing is deleted where it points."""
        if version is not None and all_versions:
            raise typer.BadParameter("give --version or --all-versions, not both", param_hint="--version")
        client = Client()
        entry = version_of(client, latest(client, project, name, cluster), version)
        done = client.delete(f"{plural}/{entry['id']}", params={"all_versions": "true"} if all_versions else None)
        listed = ", ".join(str(v) for v in done["deleted_versions"])
        console.print(f"{kind} {done['name']}: deleted version{'s' if len(done['deleted_versions']) != 1 else ''} "
                      f"{listed}", highlight=False)
