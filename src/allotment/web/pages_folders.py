"""Console storage folders: the list (own, group and shared folders; the trash), creating one, invitations received
and sent, and each folder's file browser (directories, upload, download, delete, share, trash, restore, purge).

Everything goes through storage/folders.py, which asks core.permissions.folder_refusal, exactly as the API does;
uploads are spooled to disk by the form parser and stored from there, downloads stream.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import AUTHENTICATED, FOLDER_PERMISSIONS, Principal
from allotment.errors import DomainError
from allotment.identity.models import Group
from allotment.identity.service import find_user
from allotment.storage import folders, hosts
from allotment.storage.hosts import StorageContext
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Me = Annotated[Principal, require(AUTHENTICATED)]


def _errors(exc: DomainError, default_field: str) -> dict[str, list[str]]:
    return field_errors(exc.errors) if exc.errors else {default_field: [exc.detail]}


def _list_page(request: Request, principal: Principal, db, trashed: bool = False, status: int = 200,
               errors: dict | None = None, values: dict | None = None) -> Response:
    found = folders.visible(db, principal, trashed)
    groups = [g.name for g in db.query(Group).order_by(Group.name).all() if not g.builtin] \
        if principal.is_platform_admin else []
    context = {"folders": [folders.folder_out(db, f) for f in found], "trashed": trashed,
               "hosts": [h.name for h in hosts.list_hosts(db)], "groups": groups,
               "permissions": FOLDER_PERMISSIONS, "invitations": folders.invitations(db, principal),
               "errors": errors or {}, "values": values or {}}
    return render(request, "folders/list.html", context, status=status)


@router.get("/ui/folders")
def folders_page(request: Request, principal: Me, db: DB, trashed: bool = False) -> Response:
    return _list_page(request, principal, db, trashed)


@router.post("/ui/folders")
def create_folder(request: Request, principal: Me, db: DB, state: State, name: Annotated[str, Form()] = "",
                  host: Annotated[str, Form()] = "", capacity: Annotated[str, Form()] = "",
                  group: Annotated[str, Form()] = "", permission: Annotated[str, Form()] = "") -> Response:
    values = {"name": name, "host": host, "capacity": capacity, "group": group, "permission": permission}
    try:
        found = folders.create(db, StorageContext.of(state), principal, name, host or None, group or None,
                               permission or None, folders.parse_capacity(capacity), client_address(request))
    except DomainError as exc:
        db.rollback()
        return _list_page(request, principal, db, status=exc.status, errors=_errors(exc, "form"), values=values)
    return redirect(f"/ui/folders/{found.folder.id}", notice=f"Folder {found.folder.name} created.",
                    request=request)


@router.post("/ui/folder-invitations/{invitation_id}/{action}")
def decide_invitation(request: Request, principal: Me, db: DB, invitation_id: int, action: str) -> Response:
    try:
        if action == "cancel":
            invitation = folders.cancel_invitation(db, principal, invitation_id, client_address(request))
        elif action in ("accept", "reject"):
            invitation = folders.respond(db, principal, invitation_id, action == "accept", client_address(request))
        else:
            return redirect("/ui/folders", notice=f"Unknown action {action}.", request=request)
    except DomainError as exc:
        db.rollback()
        return redirect("/ui/folders", notice=exc.detail, request=request)
    return redirect("/ui/folders", notice=f"Invitation {invitation.id}: {invitation.state}.", request=request)


def _browser(request: Request, principal: Principal, db, state, ref: str, prefix: str = "", status: int = 200,
             errors: dict | None = None, values: dict | None = None) -> Response:
    ctx = StorageContext.of(state)
    found = folders.resolve(db, principal, ref)
    info = folders.folder_out(db, found)
    entries = folders.list_files(db, ctx, principal, found, prefix) if found.folder.trashed_at is None else []
    clean = prefix.strip("/")
    crumbs, walked = [], []
    for part in clean.split("/") if clean else []:
        walked.append(part)
        crumbs.append({"name": part, "prefix": "/".join(walked)})
    base = f"/ui/folders/{found.folder.id}"
    context = {"folder": info, "entries": entries, "prefix": clean, "crumbs": crumbs, "base": base,
               "usage": folders.usage(db, ctx, found.folder), "may_write": info["permission"] in ("rw", "rwd"),
               "may_delete": info["permission"] == "rwd", "manager": found.manager or principal.is_platform_admin,
               "permissions": FOLDER_PERMISSIONS, "errors": errors or {}, "values": values or {},
               "here": base + (f"?{urlencode({'prefix': clean})}" if clean else ""),
               "download": lambda path: f"{base}/download?{urlencode({'path': path})}",
               "open_dir": lambda path: f"{base}?{urlencode({'prefix': path})}"}
    return render(request, "folders/detail.html", context, status=status)


@router.get("/ui/folders/{ref}")
def folder_page(request: Request, principal: Me, db: DB, state: State, ref: str, prefix: str = "") -> Response:
    return _browser(request, principal, db, state, ref, prefix)


@router.get("/ui/folders/{ref}/download")
def download(principal: Me, db: DB, state: State, ref: str, path: str) -> StreamingResponse:
    found = folders.resolve(db, principal, ref)
    chunks = folders.download(db, StorageContext.of(state), principal, found, path)
    name = quote(path.rstrip("/").rsplit("/", 1)[-1])
    return StreamingResponse(chunks, media_type="application/octet-stream",
                             headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})


@router.post("/ui/folders/{ref}/upload")
async def upload(request: Request, principal: Me, db: DB, state: State, ref: str,
                 file: Annotated[UploadFile, File()], prefix: Annotated[str, Form()] = "") -> Response:
    """The form parser has spooled the file to disk; it is copied in chunks to the store's staging file."""
    ctx = StorageContext.of(state)
    name = (file.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    path = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name

    def store() -> Response | None:
        try:
            found = folders.resolve(db, principal, ref)
            clean = folders.check_upload(db, principal, found, path)
            with tempfile.NamedTemporaryFile(delete=False, prefix="upload-") as spooled:
                file.file.seek(0)
                shutil.copyfileobj(file.file, spooled, 256 * 1024)
                size = spooled.tell()
            try:
                folders.store_upload(db, ctx, principal, found, clean, Path(spooled.name), size,
                                     client_address(request))
            finally:
                Path(spooled.name).unlink(missing_ok=True)
        except DomainError as exc:
            db.rollback()
            return _browser(request, principal, db, state, ref, prefix, status=exc.status,
                            errors={"file": [exc.errors[0].message if exc.errors else exc.detail]})
        return None

    failed = await run_in_threadpool(store)
    if failed is not None:
        return failed
    back = f"/ui/folders/{quote(ref)}" + (f"?{urlencode({'prefix': prefix.strip('/')})}" if prefix.strip("/") else "")
    return redirect(back, notice=f"Uploaded {path}.", request=request)


@router.post("/ui/folders/{ref}/delete")
def delete_file(request: Request, principal: Me, db: DB, state: State, ref: str,
                path: Annotated[str, Form()], back: Annotated[str, Form()] = "") -> Response:
    found = folders.resolve(db, principal, ref)
    folders.delete_file(db, StorageContext.of(state), principal, found, path, client_address(request))
    target = back if back.startswith("/ui/folders/") else f"/ui/folders/{found.folder.id}"
    return redirect(target, notice=f"Deleted {path}.", request=request)


@router.post("/ui/folders/{ref}/share")
def share(request: Request, principal: Me, db: DB, state: State, ref: str, user: Annotated[str, Form()] = "",
          permission: Annotated[str, Form()] = "rw") -> Response:
    found = folders.resolve(db, principal, ref)
    try:
        invitee = find_user(db, user.strip()) if user.strip() else None
        if invitee is None:
            return _browser(request, principal, db, state, ref, status=422, errors={"user": ["is required"]},
                            values={"user": user, "permission": permission})
        folders.share(db, principal, found, invitee, permission, client_address(request))
    except DomainError as exc:
        db.rollback()
        return _browser(request, principal, db, state, ref, status=exc.status,
                        errors={"user": [exc.errors[0].message if exc.errors else exc.detail]},
                        values={"user": user, "permission": permission})
    return redirect(f"/ui/folders/{found.folder.id}", notice=f"Invited {invitee.username} ({permission}).",
                    request=request)


@router.post("/ui/folders/{ref}/{action}")
def folder_action(request: Request, principal: Me, db: DB, state: State, ref: str, action: str) -> Response:
    """trash, restore or purge."""
    source = client_address(request)
    try:
        if action == "trash":
            found = folders.resolve(db, principal, ref, trashed=False)
            folders.trash(db, principal, found, source)
            return redirect("/ui/folders", notice=f"Folder {found.folder.name} moved to the trash.", request=request)
        found = folders.resolve(db, principal, ref, trashed=True)
        if action == "restore":
            folders.restore(db, principal, found, source)
            return redirect(f"/ui/folders/{found.folder.id}", notice=f"Folder {found.folder.name} restored.",
                            request=request)
        if action == "purge":
            folders.purge(db, StorageContext.of(state), principal, found, source)
            return redirect("/ui/folders?trashed=true", notice=f"Folder {found.folder.name} purged.",
                            request=request)
    except DomainError as exc:
        db.rollback()
        return redirect(f"/ui/folders/{quote(ref)}", notice=exc.detail, request=request)
    return redirect("/ui/folders", notice=f"Unknown action {action}.", request=request)
