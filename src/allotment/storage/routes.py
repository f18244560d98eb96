"""Storage hosts (platform admins manage them; anyone signed in lists them) and folders with their files.

Folder routes take any signed-in principal; what it may do with a folder is decided by core.permissions'
folder_refusal through storage/folders.py. A folder is named by its id or its name. Uploads are the raw request
body (PUT), spooled to disk as it arrives and refused as soon as it passes the folder's room; downloads stream."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from allotment.api.deps import DB, State, client_address, require
from allotment.api.fields import IdPath
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.identity.service import find_user
from allotment.storage import folders, hosts
from allotment.storage.hosts import StorageContext
from allotment.storage.models import StorageHost
from allotment.storage.schemas import (
    EntryList,
    EntryOut,
    FolderCreate,
    FolderList,
    FolderOut,
    HostBody,
    HostCreate,
    HostList,
    HostOut,
    HostTest,
    InvitationList,
    InvitationOut,
    InvitationState,
    Purged,
    ShareBody,
)

router = APIRouter(tags=["storage"])
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
Anyone = Annotated[Principal, require(AUTHENTICATED)]


# -- hosts -----------------------------------------------------------------------------------------------------------

@router.get("/storage-hosts", response_model=HostList, dependencies=[require(AUTHENTICATED)])
def list_hosts(db: DB) -> HostList:
    items = [HostOut(**hosts.host_out(h)) for h in hosts.list_hosts(db)]
    return HostList(items=items, total=len(items))


@router.post("/storage-hosts", response_model=HostOut, status_code=201)
def create_host(body: HostCreate, principal: Admin, db: DB, state: State, request: Request) -> HostOut:
    host = hosts.create_host(db, StorageContext.of(state), body.model_dump(exclude_unset=True), principal,
                             client_address(request))
    return HostOut(**hosts.host_out(host))


@router.get("/storage-hosts/{name}", response_model=HostOut, dependencies=[require(AUTHENTICATED)])
def get_host(name: str, db: DB) -> HostOut:
    return HostOut(**hosts.host_out(hosts.find_host(db, name)))


@router.patch("/storage-hosts/{name}", response_model=HostOut)
def update_host(name: str, body: HostBody, principal: Admin, db: DB, state: State, request: Request) -> HostOut:
    host = hosts.update_host(db, StorageContext.of(state), hosts.find_host(db, name),
                             body.model_dump(exclude_unset=True), principal, client_address(request))
    return HostOut(**hosts.host_out(host))


@router.delete("/storage-hosts/{name}", status_code=204)
def delete_host(name: str, principal: Admin, db: DB, request: Request) -> Response:
    hosts.delete_host(db, hosts.find_host(db, name), principal, client_address(request))
    return Response(status_code=204)


@router.post("/storage-hosts/{name}/test", response_model=HostTest, dependencies=[require(PLATFORM_ADMIN)])
def test_host(name: str, db: DB, state: State) -> HostTest:
    """Try the host for real (an S3 host: its bucket with its keys) and report what it answered."""
    error = hosts.test_host(hosts.find_host(db, name), StorageContext.of(state))
    return HostTest(name=name, ok=error is None, error=error)


# -- folders ---------------------------------------------------------------------------------------------------------

@router.get("/folders", response_model=FolderList)
def list_folders(principal: Anyone, db: DB, trashed: bool = False,
                 everyone: Annotated[bool, Query(alias="all")] = False) -> FolderList:
    """The caller's folders: its own, its groups' and those shared with it (`trashed`: the trash instead; `all`:
    every folder, for platform admins)."""
    found = folders.visible(db, principal, trashed, everyone=everyone and principal.is_platform_admin)
    items = [FolderOut(**folders.folder_out(db, f)) for f in found]
    return FolderList(items=items, total=len(items))


@router.post("/folders", response_model=FolderOut, status_code=201)
def create_folder(body: FolderCreate, principal: Anyone, db: DB, state: State, request: Request) -> FolderOut:
    found = folders.create(db, StorageContext.of(state), principal, body.name, body.host, body.group,
                           body.permission, folders.parse_capacity(body.capacity), client_address(request))
    return FolderOut(**folders.folder_out(db, found))


@router.get("/folders/{ref}", response_model=FolderOut)
def get_folder(ref: str, principal: Anyone, db: DB, state: State) -> FolderOut:
    found = folders.resolve(db, principal, ref)
    usage = folders.usage(db, StorageContext.of(state), found.folder)
    return FolderOut(**folders.folder_out(db, found), usage_bytes=usage)


@router.post("/folders/{ref}/trash", response_model=FolderOut)
def trash_folder(ref: str, principal: Anyone, db: DB, request: Request) -> FolderOut:
    """Refused while an active job mounts the folder."""
    found = folders.resolve(db, principal, ref, trashed=False)
    folders.trash(db, principal, found, client_address(request))
    return FolderOut(**folders.folder_out(db, found))


@router.post("/folders/{ref}/restore", response_model=FolderOut)
def restore_folder(ref: str, principal: Anyone, db: DB, request: Request) -> FolderOut:
    found = folders.resolve(db, principal, ref, trashed=True)
    folders.restore(db, principal, found, client_address(request))
    return FolderOut(**folders.folder_out(db, found))


@router.delete("/folders/{ref}", status_code=204)
def purge_folder(ref: str, principal: Anyone, db: DB, state: State, request: Request) -> Response:
    """Delete a trashed folder and its files for good."""
    found = folders.resolve(db, principal, ref, trashed=True)
    folders.purge(db, StorageContext.of(state), principal, found, client_address(request))
    return Response(status_code=204)


@router.delete("/users/{user}/folders", response_model=Purged)
def purge_user_folders(user: str, principal: Admin, db: DB, state: State, request: Request) -> Purged:
    """Every folder the user owns, for good; group folders they created stay with their groups."""
    target = find_user(db, user)
    names = folders.purge_user(db, StorageContext.of(state), principal, target, client_address(request))
    return Purged(user=target.username, purged=names)


@router.post("/folders/{ref}/share", response_model=InvitationOut, status_code=201)
def share_folder(ref: str, body: ShareBody, principal: Anyone, db: DB, request: Request) -> InvitationOut:
    found = folders.resolve(db, principal, ref, trashed=False)
    invitee = find_user(db, body.user)
    invitation = folders.share(db, principal, found, invitee, body.permission, client_address(request))
    return InvitationOut(**folders.invitation_out(db, invitation, principal))


@router.get("/folder-invitations", response_model=InvitationList)
def list_invitations(principal: Anyone, db: DB, state: InvitationState | None = None) -> InvitationList:
    items = [InvitationOut(**i) for i in folders.invitations(db, principal, state)]
    return InvitationList(items=items, total=len(items))


@router.post("/folder-invitations/{invitation_id}/{action}", response_model=InvitationOut)
def decide_invitation(invitation_id: IdPath, action: str, principal: Anyone, db: DB,
                      request: Request) -> InvitationOut:
    """accept or reject (the invitee), cancel (the folder's owner)."""
    source = client_address(request)
    if action == "cancel":
        invitation = folders.cancel_invitation(db, principal, invitation_id, source)
    elif action in ("accept", "reject"):
        invitation = folders.respond(db, principal, invitation_id, action == "accept", source)
    else:
        from allotment.errors import NotFound

        raise NotFound(f"no invitation action {action} (accept, reject or cancel)")
    return InvitationOut(**folders.invitation_out(db, invitation, principal))


# -- files -----------------------------------------------------------------------------------------------------------

@router.get("/folders/{ref}/files", response_model=EntryList)
def list_files(ref: str, principal: Anyone, db: DB, state: State,
               prefix: Annotated[str, Query(max_length=1024)] = "") -> EntryList:
    ctx = StorageContext.of(state)
    found = folders.resolve(db, principal, ref)
    entries = folders.list_files(db, ctx, principal, found, prefix)
    return EntryList(folder=found.folder.name, prefix=prefix.strip("/"),
                     items=[EntryOut(path=e.path, size=e.size, modified=e.modified, is_dir=e.is_dir) for e in entries],
                     usage_bytes=folders.usage(db, ctx, found.folder),
                     capacity=folders.folder_out(db, found)["capacity"])


def staging_dir(db, state, found) -> Path | None:
    """Where an upload is spooled: beside the folder on a local host (so storing it is a rename)."""
    host = db.get(StorageHost, found.folder.host_id)
    if host.kind != "local":
        return None
    path = hosts.local_root(host, StorageContext.of(state)) / ".uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def receive_upload(chunks, directory: Path | None, room: int | None, folder) -> tuple[Path, int]:
    """Write the body to a temporary file as it arrives; refused as soon as it passes the room left."""
    handle = tempfile.NamedTemporaryFile(dir=directory, delete=False, prefix="upload-")  # noqa: SIM115
    size = 0
    try:
        with handle:
            async for chunk in chunks:
                size += len(chunk)
                if room is not None and size > room:
                    raise folders.over_capacity(folder, folder.capacity_bytes - room, size)
                handle.write(chunk)
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name), size


@router.put("/folders/{ref}/files/{path:path}", status_code=201, response_model=EntryOut)
async def upload_file(ref: str, path: str, request: Request, principal: Anyone, db: DB, state: State) -> EntryOut:
    """The request body is the file's content (any type); an existing file is replaced."""
    ctx = StorageContext.of(state)

    def prepare():
        found = folders.resolve(db, principal, ref)
        clean = folders.check_upload(db, principal, found, path)
        return found, clean, folders.room_left(db, ctx, found, clean), staging_dir(db, state, found)

    found, clean, room, directory = await run_in_threadpool(prepare)
    spooled, size = await receive_upload(request.stream(), directory, room, found.folder)
    try:
        await run_in_threadpool(folders.store_upload, db, ctx, principal, found, clean, spooled, size,
                                client_address(request))
    finally:
        spooled.unlink(missing_ok=True)
    return EntryOut(path=clean, size=size, modified=None, is_dir=False)


@router.get("/folders/{ref}/files/{path:path}")
def download_file(ref: str, path: str, principal: Anyone, db: DB, state: State) -> StreamingResponse:
    found = folders.resolve(db, principal, ref)
    chunks = folders.download(db, StorageContext.of(state), principal, found, path)
    name = path.rstrip("/").rsplit("/", 1)[-1].replace('"', "")
    return StreamingResponse(chunks, media_type="application/octet-stream",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.delete("/folders/{ref}/files/{path:path}", status_code=204)
def delete_file(ref: str, path: str, principal: Anyone, db: DB, state: State, request: Request) -> Response:
    found = folders.resolve(db, principal, ref)
    folders.delete_file(db, StorageContext.of(state), principal, found, path, client_address(request))
    return Response(status_code=204)
