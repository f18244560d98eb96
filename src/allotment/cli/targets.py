"""`allot targets ...`: storage targets (DKube DVS, ClearML cloud access): list, show, create, edit, test, delete.
Secrets are read from standard input or a file, never from the command line (where `ps` would show them), and are
never shown back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from allotment.cli.client import Client, CliError, segment
from allotment.cli.output import console, emit_json, show, table, when

JSON = typer.Option(False, "--json")
SECRET_FIELDS = {"s3": "secret_key", "gcs": "service_account_json", "git": "token"}
SECRET_HELP = ("read the secret (S3 secret key, GCS service account JSON, git token) from this file, or - for "
               "standard input")


def _secret(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the secret from {path}: {exc}") from exc
    return text.strip() if path == "-" or not text.lstrip().startswith("{") else text


def _row(t: dict[str, Any]) -> dict[str, Any]:
    where = {"s3": f"{t.get('endpoint') or 'AWS'} {t.get('bucket') or ''}", "gcs": t.get("bucket"),
             "git": t.get("repository_url"), "folder": t.get("path")}[t["kind"]]
    tested = "never" if t.get("last_test_ok") is None else ("ok" if t["last_test_ok"] else "failed")
    return {"name": t["name"], "kind": t["kind"], "where": where, "secret": "set" if t["secret_set"] else "-",
            "last test": tested, "tested at": when(t.get("last_test_at"))}


def _fields(endpoint, bucket, region, access_key, repository_url, path, description) -> dict[str, Any]:
    values = {"endpoint": endpoint, "bucket": bucket, "region": region, "access_key": access_key,
              "repository_url": repository_url, "path": path, "description": description}
    return {k: v for k, v in values.items() if v is not None}


def register(app: typer.Typer) -> None:
    targets = typer.Typer(help="Storage targets (S3/MinIO, GCS, git metadata, cluster folder) for jobs and repos.",
                          no_args_is_help=True)
    app.add_typer(targets, name="targets")

    @targets.command("list")
    def list_targets(json_: bool = JSON) -> None:
        items = Client().get("storage/targets")["items"]
        if json_:
            emit_json(items)
            return
        table([_row(t) for t in items], ["name", "kind", "where", "secret", "last test", "tested at"],
              empty="no storage targets")

    @targets.command("show")
    def show_target(name: str, json_: bool = JSON) -> None:
        target = Client().get(f"storage/targets/{segment(name)}")
        if json_:
            emit_json(target)
            return
        show({k: v for k, v in target.items() if v not in (None, "", [])} | {
            "job_env": ", ".join(target["job_env"])}, False)

    @targets.command("create")
    def create(name: str, kind: str = typer.Option(..., "--kind", help="s3, gcs, git or folder"),
               endpoint: str = typer.Option(None, "--endpoint", help="s3: the server's URL (MinIO); default AWS"),
               bucket: str = typer.Option(None, "--bucket"), region: str = typer.Option(None, "--region"),
               access_key: str = typer.Option(None, "--access-key"),
               repository_url: str = typer.Option(None, "--repository-url", help="git"),
               path: str = typer.Option(None, "--path", help="folder: its absolute path on the cluster"),
               description: str = typer.Option(None, "--description"),
               secret_from: str = typer.Option(None, "--secret-from", help=SECRET_HELP)) -> None:
        """Register a target (platform admins)."""
        body = {"name": name, "kind": kind, **_fields(endpoint, bucket, region, access_key, repository_url, path,
                                                     description)}
        secret = _secret(secret_from)
        if secret is not None and kind in SECRET_FIELDS:
            body[SECRET_FIELDS[kind]] = secret
        Client().post("storage/targets", json=body)
        console.print(f"storage target {name} registered", highlight=False)

    @targets.command("edit")
    def edit(name: str, endpoint: str = typer.Option(None, "--endpoint"), bucket: str = typer.Option(None, "--bucket"),
             region: str = typer.Option(None, "--region"), access_key: str = typer.Option(None, "--access-key"),
             repository_url: str = typer.Option(None, "--repository-url"), path: str = typer.Option(None, "--path"),
             description: str = typer.Option(None, "--description"), rename: str = typer.Option(None, "--rename"),
             secret_from: str = typer.Option(None, "--secret-from", help=SECRET_HELP + "; left out: kept")) -> None:
        """Change a target; without --secret-from its secret is kept."""
        client = Client()
        kind = client.get(f"storage/targets/{segment(name)}")["kind"]
        body = _fields(endpoint, bucket, region, access_key, repository_url, path, description)
        if rename:
            body["name"] = rename
        secret = _secret(secret_from)
        if secret is not None and kind in SECRET_FIELDS:
            body[SECRET_FIELDS[kind]] = secret
        client.patch(f"storage/targets/{segment(name)}", json=body)
        console.print(f"storage target {rename or name} updated", highlight=False)

    @targets.command("test")
    def test(name: str, json_: bool = JSON) -> None:
        """Try the real service with the target's credentials and report its answer."""
        out = Client().post(f"storage/targets/{segment(name)}/test")
        if json_:
            emit_json(out)
        elif out["ok"]:
            console.print(f"storage target {name}: connection works", highlight=False)
        else:
            console.print(f"storage target {name}: {out['message']}", highlight=False, markup=False)
        if not out["ok"]:
            raise typer.Exit(1)

    @targets.command("delete")
    def delete(name: str) -> None:
        Client().delete(f"storage/targets/{segment(name)}")
        console.print(f"storage target {name} deleted", highlight=False)
