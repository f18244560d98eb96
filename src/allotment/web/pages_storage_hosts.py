"""Console storage hosts (platform admins): the local directory host and S3-compatible hosts, adding one (its
secret is write-only: stored sealed, never shown), setting a new secret, trying a host for real, deleting an empty
one. Everything goes through storage/hosts.py, as the API does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.core.permissions import PLATFORM_ADMIN, Principal
from allotment.errors import DomainError
from allotment.storage import hosts
from allotment.storage.hosts import StorageContext
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]
FIELDS = ("name", "kind", "description", "root", "endpoint", "bucket", "region", "access_key")


def _page(request: Request, db, status: int = 200, errors: dict | None = None, values: dict | None = None,
          tested: dict | None = None) -> Response:
    context = {"hosts": [hosts.host_out(h) for h in hosts.list_hosts(db)], "errors": errors or {},
               "values": values or {"kind": "s3"}, "tested": tested or {}}
    return render(request, "storage_hosts.html", context, status=status)


@router.get("/ui/storage-hosts")
def hosts_page(request: Request, principal: Admin, db: DB) -> Response:
    return _page(request, db)


@router.post("/ui/storage-hosts")
def create_host(request: Request, principal: Admin, db: DB, state: State, name: Annotated[str, Form()] = "",
                kind: Annotated[str, Form()] = "s3", description: Annotated[str, Form()] = "",
                root: Annotated[str, Form()] = "", endpoint: Annotated[str, Form()] = "",
                bucket: Annotated[str, Form()] = "", region: Annotated[str, Form()] = "",
                access_key: Annotated[str, Form()] = "", secret_key: Annotated[str, Form()] = "") -> Response:
    values = dict(zip(FIELDS, (name, kind, description, root, endpoint, bucket, region, access_key), strict=True))
    try:
        host = hosts.create_host(db, StorageContext.of(state), {**values, "secret_key": secret_key}, principal,
                                 client_address(request))
    except DomainError as exc:
        db.rollback()
        errors = field_errors(exc.errors) if exc.errors else {"form": [exc.detail]}
        return _page(request, db, status=exc.status, errors=errors, values=values)
    return redirect("/ui/storage-hosts", notice=f"Storage host {host.name} added.", request=request)


@router.post("/ui/storage-hosts/{name}/secret")
def set_secret(request: Request, principal: Admin, db: DB, state: State, name: str,
               secret_key: Annotated[str, Form()] = "") -> Response:
    try:
        hosts.update_host(db, StorageContext.of(state), hosts.find_host(db, name), {"secret_key": secret_key},
                          principal, client_address(request))
    except DomainError as exc:
        db.rollback()
        return redirect("/ui/storage-hosts", notice=exc.detail, request=request)
    return redirect("/ui/storage-hosts", notice=f"Storage host {name}: new secret stored." if secret_key.strip()
                    else f"Storage host {name}: no secret given, the stored one is kept.", request=request)


@router.post("/ui/storage-hosts/{name}/test")
def test_host(request: Request, principal: Admin, db: DB, state: State, name: str) -> Response:
    error = hosts.test_host(hosts.find_host(db, name), StorageContext.of(state))
    return _page(request, db, tested={name: error or "ok"})


@router.post("/ui/storage-hosts/{name}/delete")
def delete_host(request: Request, principal: Admin, db: DB, name: str) -> Response:
    try:
        hosts.delete_host(db, hosts.find_host(db, name), principal, client_address(request))
    except DomainError as exc:
        db.rollback()
        return redirect("/ui/storage-hosts", notice=exc.detail, request=request)
    return redirect("/ui/storage-hosts", notice=f"Storage host {name} deleted.", request=request)
