"""`allot folders create|list|ls|upload|download|rm|share|invitations|accept|reject|cancel|trash|restore|purge` and
`allot folders hosts list|create|update|delete|test` (storage hosts, platform admins)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from allotment.cli.client import Client, CliError, segment
from allotment.cli.output import console, emit_json, human_bytes, show

FOLDER_COLUMNS = ["id", "name", "type", "host", "owner", "group", "permission", "via", "capacity"]
INVITATION_COLUMNS = ["id", "folder", "direction", "inviter", "invitee", "permission", "state", "created_at"]
HOST_COLUMNS = ["name", "kind", "root", "endpoint", "bucket", "access_key", "secret_set", "description"]
CHUNK = 256 * 1024

opt = typer.Option
Description = Annotated[str | None, opt("--description")]
Root = Annotated[str | None, opt("--root", help="local hosts: the directory (default: under the data dir)")]
Endpoint = Annotated[str | None, opt("--endpoint", help="S3: the server's URL")]
Bucket = Annotated[str | None, opt("--bucket")]
Region = Annotated[str | None, opt("--region")]
AccessKey = Annotated[str | None, opt("--access-key")]
SecretKey = Annotated[str | None, opt("--secret-key", envvar="ALLOT_S3_SECRET_KEY",
                                      help="S3: the secret (or ALLOT_S3_SECRET_KEY); never shown back")]
ClusterPath = Annotated[list[str] | None, opt("--cluster-path", help="CLUSTER=PATH: where the host's folders "
                                              "are on a cluster's shared file system (repeat)")]


def _file_path(path: str) -> str:
    return "/".join(segment(p) for p in path.strip("/").split("/"))


def _chunks(path: Path):
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def register(app: typer.Typer) -> None:
    folders = typer.Typer(no_args_is_help=True, help="Storage folders (user and group folders, shared by "
                                                     "invitation) and their files.")
    app.add_typer(folders, name="folders")
    json_opt = typer.Option(False, "--json")

    @folders.command("create")
    def create(name: str,
               host: Annotated[str | None, typer.Option("--host", help="storage host (default: local)")] = None,
               group: Annotated[str | None, typer.Option("--group", help="a group folder (platform admins)")] = None,
               permission: Annotated[str | None, typer.Option("--permission", help="ro, rw or rwd: what the "
                                                              "group's members get (group folders)")] = None,
               capacity: Annotated[str | None, typer.Option("--capacity", help="e.g. 10Gi (a bare number is GiB); "
                                                            "default: your policy's folder capacity")] = None,
               json_: bool = json_opt) -> None:
        """Create a folder."""
        body = {k: v for k, v in (("name", name), ("host", host), ("group", group), ("permission", permission),
                                  ("capacity", capacity)) if v is not None}
        folder = Client().post("folders", json=body)
        if json_:
            emit_json(folder)
            return
        console.print(f"folder {folder['name']} (id {folder['id']}) created on host {folder['host']}, capacity "
                      f"{folder['capacity']}")

    @folders.command("list")
    def list_folders(trashed: Annotated[bool, typer.Option("--trashed", help="the trash instead")] = False,
                     all_: Annotated[bool, typer.Option("--all", help="every folder (platform admins)")] = False,
                     json_: bool = json_opt) -> None:
        """Your folders, your groups' and those shared with you."""
        body = Client().get("folders", params={"trashed": trashed, "all": all_})
        show(body if json_ else body["items"], json_, FOLDER_COLUMNS, title="trash" if trashed else "folders")

    @folders.command("ls")
    def ls(folder: str, prefix: Annotated[str, typer.Argument(help="a directory inside the folder")] = "",
           json_: bool = json_opt) -> None:
        """List a folder's files (one directory level)."""
        body = Client().get(f"folders/{segment(folder)}/files", params={"prefix": prefix})
        if json_:
            emit_json(body)
            return
        rows = [{"path": e["path"] + ("/" if e["is_dir"] else ""), "size": "" if e["is_dir"] else human_bytes(e["size"]),
                 "modified": e["modified"] or ""} for e in body["items"]]
        show(rows, False, ["path", "size", "modified"],
             title=f"{body['folder']}/{body['prefix']} ({human_bytes(body['usage_bytes'])} of {body['capacity']})")

    @folders.command("upload")
    def upload(folder: str, source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
               dest: Annotated[str | None, typer.Argument(help="path in the folder (default: the file's name)")]
               = None) -> None:
        """Upload a file, streamed (an existing file of that path is replaced)."""
        target = dest.rstrip("/") + "/" + source.name if dest and dest.endswith("/") else (dest or source.name)
        out = Client(timeout=None).put(f"folders/{segment(folder)}/files/{_file_path(target)}",
                                       content=_chunks(source))
        console.print(f"uploaded {out['path']} ({human_bytes(out['size'])}) to {folder}")

    @folders.command("download")
    def download(folder: str, path: str,
                 dest: Annotated[Path | None, typer.Argument(help="where to write it (default: its name here; "
                                                             "- for standard output)")] = None) -> None:
        """Download a file, streamed."""
        import sys

        client = Client(timeout=None)
        target = dest or Path(path.rstrip("/").rsplit("/", 1)[-1])
        with client.stream("GET", f"folders/{segment(folder)}/files/{_file_path(path)}") as response:
            if str(target) == "-":
                for block in response.iter_bytes(CHUNK):
                    sys.stdout.buffer.write(block)
                sys.stdout.buffer.flush()
                return
            if target.is_dir():
                target = target / path.rstrip("/").rsplit("/", 1)[-1]
            size = 0
            with open(target, "wb") as handle:
                for block in response.iter_bytes(CHUNK):
                    handle.write(block)
                    size += len(block)
        console.print(f"downloaded {path} ({human_bytes(size)}) to {target}")

    @folders.command("rm")
    def rm(folder: str, path: str) -> None:
        """Delete a file or directory inside a folder (needs rwd)."""
        Client().delete(f"folders/{segment(folder)}/files/{_file_path(path)}")
        console.print(f"deleted {path} from {folder}")

    @folders.command("share")
    def share(folder: str, user: str,
              permission: Annotated[str, typer.Option("--permission", help="ro, rw or rwd")] = "rw") -> None:
        """Invite a user to your folder (delete only when granted rwd)."""
        out = Client().post(f"folders/{segment(folder)}/share", json={"user": user, "permission": permission})
        console.print(f"invitation {out['id']}: {out['invitee']} to {out['folder']} ({out['permission']}), "
                      f"{out['state']}")

    @folders.command("invitations")
    def invitations(state: Annotated[str | None, typer.Option("--state", help="pending, accepted, rejected or "
                                                              "cancelled")] = None,
                    json_: bool = json_opt) -> None:
        """Invitations you received and sent."""
        body = Client().get("folder-invitations", params={"state": state} if state else None)
        show(body if json_ else body["items"], json_, INVITATION_COLUMNS, title="folder invitations")

    def _decide(invitation: int, action: str) -> None:
        out = Client().post(f"folder-invitations/{invitation}/{action}")
        console.print(f"invitation {out['id']} to {out['folder']}: {out['state']}")

    @folders.command("accept")
    def accept(invitation: int) -> None:
        """Accept an invitation (it counts against your policy's folder limit)."""
        _decide(invitation, "accept")

    @folders.command("reject")
    def reject(invitation: int) -> None:
        _decide(invitation, "reject")

    @folders.command("cancel")
    def cancel(invitation: int) -> None:
        """Cancel an invitation you sent (an accepted one: withdraw the access)."""
        _decide(invitation, "cancel")

    @folders.command("trash")
    def trash(folder: str) -> None:
        """Move a folder to the trash (refused while an active job mounts it)."""
        Client().post(f"folders/{segment(folder)}/trash")
        console.print(f"folder {folder} moved to the trash")

    @folders.command("restore")
    def restore(folder: str) -> None:
        Client().post(f"folders/{segment(folder)}/restore")
        console.print(f"folder {folder} restored")

    @folders.command("purge")
    def purge(folder: Annotated[str | None, typer.Argument(help="a trashed folder")] = None,
              user: Annotated[str | None, typer.Option("--user", help="every folder this user owns (platform "
                                                       "admins); group folders stay")] = None,
              yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
        """Delete a trashed folder and its files for good (or, with --user, every folder a user owns)."""
        if (folder is None) == (user is None):
            raise CliError("give a trashed folder or --user")
        what = f"every folder of {user}" if user else f"folder {folder}"
        if not yes and not typer.confirm(f"delete {what} and its files for good?"):
            raise typer.Exit(1)
        if user:
            out = Client().delete(f"users/{segment(user)}/folders")
            console.print(f"purged {len(out['purged'])} folder(s) of {out['user']}: {', '.join(out['purged'])}")
        else:
            Client().delete(f"folders/{segment(folder)}")
            console.print(f"folder {folder} purged")

    hosts = typer.Typer(no_args_is_help=True, help="Storage hosts: the local directory and S3-compatible buckets.")
    folders.add_typer(hosts, name="hosts")

    def _host_body(description, root, endpoint, bucket, region, access_key, secret_key, cluster_path) -> dict:
        body = {k: v for k, v in (("description", description), ("root", root), ("endpoint", endpoint),
                                  ("bucket", bucket), ("region", region), ("access_key", access_key),
                                  ("secret_key", secret_key)) if v is not None}
        if cluster_path:
            pairs = [p.split("=", 1) for p in cluster_path]
            if any(len(p) != 2 for p in pairs):
                raise CliError("--cluster-path takes CLUSTER=PATH")
            body["cluster_paths"] = dict(pairs)
        return body

    @hosts.command("list")
    def list_hosts(json_: bool = json_opt) -> None:
        body = Client().get("storage-hosts")
        show(body if json_ else body["items"], json_, HOST_COLUMNS, title="storage hosts")

    @hosts.command("create")
    def create_host(name: str, kind: Annotated[str, opt("--kind", help="s3 or local")] = "s3",
                    description: Description = None, root: Root = None, endpoint: Endpoint = None,
                    bucket: Bucket = None, region: Region = None, access_key: AccessKey = None,
                    secret_key: SecretKey = None, cluster_path: ClusterPath = None) -> None:
        body = {"name": name, "kind": kind, **_host_body(description, root, endpoint, bucket, region, access_key,
                                                         secret_key, cluster_path)}
        host = Client().post("storage-hosts", json=body)
        console.print(f"storage host {host['name']} ({host['kind']}) created")

    @hosts.command("update")
    def update_host(name: str, description: Description = None, root: Root = None, endpoint: Endpoint = None,
                    bucket: Bucket = None, region: Region = None, access_key: AccessKey = None,
                    secret_key: SecretKey = None, cluster_path: ClusterPath = None) -> None:
        """Change a host; without --secret-key the stored secret is kept."""
        body = _host_body(description, root, endpoint, bucket, region, access_key, secret_key, cluster_path)
        host = Client().patch(f"storage-hosts/{segment(name)}", json=body)
        console.print(f"storage host {host['name']} updated")

    @hosts.command("delete")
    def delete_host(name: str) -> None:
        Client().delete(f"storage-hosts/{segment(name)}")
        console.print(f"storage host {name} deleted")

    @hosts.command("test")
    def test_host(name: str) -> None:
        """Try the host for real and report what it answered."""
        out = Client().post(f"storage-hosts/{segment(name)}/test")
        if out["ok"]:
            console.print(f"storage host {name}: ok")
            return
        raise CliError(f"storage host {name}: {out['error']}")
