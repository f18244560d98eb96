"""Storage targets (DKube DVS, ClearML cloud access) in the console: every signed-in user sees them (never their
secrets); platform admins register them with the fields of their kind, edit them (a blank secret keeps the stored
one), test the connection against the real service and remove them. Through storage.targets, as the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from allotment.api.deps import DB, State, client_address, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, PLATFORM_ADMIN, Principal
from allotment.errors import DomainError, FieldError, ValidationFailed
from allotment.storage import targets
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Signed = Annotated[Principal, require(AUTHENTICATED)]
Admin = Annotated[Principal, require(PLATFORM_ADMIN)]  # storage_target_refusal: admins manage
FIELDS = ("endpoint", "bucket", "region", "access_key", "repository_url", "path", "description")
SECRETS = ("secret_key", "service_account_json", "token")


def _page(request: Request, db, principal: Principal, status: int = 200, **extra) -> Response:
    context = {"targets": [targets.out(t) for t in targets.list_targets(db)], "kinds": targets.KINDS,
               "values": {"kind": "s3"}, "errors": {}, "may_manage": principal.is_platform_admin}
    context.update(extra)
    return render(request, "storage_targets.html", context, status=status)


def _form_values(kind: str, fields: dict[str, str]) -> dict[str, str]:
    """The form's fields that belong to the kind (a form shows every kind's fields; the others are left blank)."""
    keep = targets.ALLOWED.get(kind, set()) | {"description", targets.SECRET_FIELDS.get(kind, "")}
    return {k: v for k, v in fields.items() if k in keep and v.strip()}


def _check_name(name: str) -> None:
    from allotment.core import names

    problems = names.name_problems(name, "storage target", 64, False)
    if problems:
        raise ValidationFailed(f"name: {problems[0]}", [FieldError("name", problems[0])])


@router.get("/ui/storage-targets")
def targets_page(request: Request, principal: Signed, db: DB) -> Response:
    return _page(request, db, principal)


@router.post("/ui/storage-targets")
def create_target(request: Request, principal: Admin, db: DB, state: State, name: Annotated[str, Form()] = "",
                  kind: Annotated[str, Form()] = "s3", endpoint: Annotated[str, Form()] = "",
                  bucket: Annotated[str, Form()] = "", region: Annotated[str, Form()] = "",
                  access_key: Annotated[str, Form()] = "", repository_url: Annotated[str, Form()] = "",
                  path: Annotated[str, Form()] = "", description: Annotated[str, Form()] = "",
                  secret_key: Annotated[str, Form()] = "", service_account_json: Annotated[str, Form()] = "",
                  token: Annotated[str, Form()] = "") -> Response:
    fields = {"endpoint": endpoint, "bucket": bucket, "region": region, "access_key": access_key,
              "repository_url": repository_url, "path": path, "description": description, "secret_key": secret_key,
              "service_account_json": service_account_json, "token": token}
    try:
        targets.authorise(principal, "manage")
        _check_name(name)
        target = targets.create_target(db, principal, state.secret_key,
                                       {"name": name, "kind": kind, **_form_values(kind, fields)})
    except DomainError as exc:
        if not exc.errors:
            raise
        values = {"name": name, "kind": kind, **{k: v for k, v in fields.items() if k not in SECRETS}}
        return _page(request, db, principal, status=exc.status, errors=field_errors(exc.errors), values=values)
    audit.record(db, principal, "storage_target.create", "storage_target", target.name, target.id,
                 changes={"after": targets.audit_state(target)}, source=client_address(request))
    return redirect(f"/ui/storage-targets/{target.name}", notice=f"Storage target {target.name} registered.")


def _target_page(request: Request, db, principal: Principal, target, status: int = 200, **extra) -> Response:
    shown = targets.out(target)
    context = {"target": shown, "values": shown, "errors": {}, "may_manage": principal.is_platform_admin,
               "secret_field": targets.SECRET_FIELDS.get(target.kind)}
    context.update(extra)
    return render(request, "storage_target.html", context, status=status)


@router.get("/ui/storage-targets/{name}")
def target_page(request: Request, principal: Signed, db: DB, name: str) -> Response:
    targets.authorise(principal, "read")
    return _target_page(request, db, principal, targets.find_target(db, name))


@router.post("/ui/storage-targets/{name}")
def save_target(request: Request, principal: Admin, db: DB, state: State, name: str,
                endpoint: Annotated[str, Form()] = "", bucket: Annotated[str, Form()] = "",
                region: Annotated[str, Form()] = "", access_key: Annotated[str, Form()] = "",
                repository_url: Annotated[str, Form()] = "", path: Annotated[str, Form()] = "",
                description: Annotated[str, Form()] = "", secret: Annotated[str, Form()] = "") -> Response:
    targets.authorise(principal, "manage")
    target = targets.find_target(db, name)
    given = {"endpoint": endpoint, "bucket": bucket, "region": region, "access_key": access_key,
             "repository_url": repository_url, "path": path, "description": description}
    changes = {k: v for k, v in given.items() if k in targets.ALLOWED[target.kind] | {"description"}}
    secret_field = targets.SECRET_FIELDS.get(target.kind)
    if secret_field and secret.strip():
        changes[secret_field] = secret
    before = targets.audit_state(target)
    try:
        targets.update_target(db, principal, state.secret_key, target, changes)
    except DomainError as exc:
        if not exc.errors:
            raise
        errors = field_errors(exc.errors)
        if secret_field in errors:
            errors["secret"] = errors.pop(secret_field)
        return _target_page(request, db, principal, target, status=exc.status, errors=errors,
                            values=targets.out(target) | given)
    changed = audit.diff(before, targets.audit_state(target))
    if secret.strip():
        changed.setdefault("after", {})["secret"] = "replaced"
    audit.record(db, principal, "storage_target.update", "storage_target", target.name, target.id, changes=changed,
                 source=client_address(request))
    return redirect(f"/ui/storage-targets/{target.name}", notice=f"Storage target {target.name} saved.")


@router.post("/ui/storage-targets/{name}/test")
def test_target(request: Request, principal: Admin, db: DB, state: State, name: str) -> Response:
    targets.authorise(principal, "manage")
    target = targets.find_target(db, name)
    problem = targets.test_connection(db, principal, state.secret_key, target)
    audit.record(db, principal, "storage_target.test", "storage_target", target.name, target.id,
                 changes={"after": {"ok": problem is None, "message": problem}}, source=client_address(request))
    return redirect(f"/ui/storage-targets/{target.name}", request=request,
                    notice=f"Connection to {target.name} works." if problem is None
                    else f"Connection to {target.name} failed: {problem}")


@router.post("/ui/storage-targets/{name}/delete")
def delete_target(request: Request, principal: Admin, db: DB, name: str) -> Response:
    targets.authorise(principal, "manage")
    target = targets.find_target(db, name)
    before = targets.audit_state(target)
    targets.delete_target(db, principal, target)
    audit.record(db, principal, "storage_target.delete", "storage_target", before["name"], None,
                 changes={"before": before}, source=client_address(request))
    return redirect("/ui/storage-targets", request=request, notice=f"Storage target {before['name']} removed.")
