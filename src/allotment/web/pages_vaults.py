"""Configuration vaults (ClearML) in the console: the vaults the user may read with enable toggles, a create form
(admins also for a user, a service account or a group), import from a file, an editor per vault, download, and the
effective configuration with each key's source. Downloads are the API's (GET /api/v1/vaults/{name}/download,
which the console's session authenticates). Through vaults.service, as the API; its refusals are the page's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import Response

from allotment.api.deps import DB, client_address, require
from allotment.audit import service as audit
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.errors import DomainError, FieldError, ValidationFailed
from allotment.vaults import formats
from allotment.vaults import service as vaults
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Signed = Annotated[Principal, require(AUTHENTICATED)]
MAX_UPLOAD = vaults.MAX_CONTENT * 4  # bytes of UTF-8


def _owner_fields(owner: str) -> dict[str, str | None]:
    """The create form's owner: `me`, `user:NAME`, `service-account:NAME` or `group:NAME`."""
    kind, _, name = owner.partition(":")
    if kind in ("", "me"):
        return {"user": None, "service_account": None, "group": None}
    if kind not in ("user", "service-account", "group") or not name.strip():
        raise ValidationFailed("owner: give me, user:NAME, service-account:NAME or group:NAME",
                               [FieldError("owner", "give me, user:NAME, service-account:NAME or group:NAME")])
    return {"user": None, "service_account": None, "group": None, kind.replace("-", "_"): name.strip()}


def _page(request: Request, db, principal: Principal, status: int = 200, **extra) -> Response:
    items = [vaults.snapshot(db, v) for v in vaults.list_vaults(db, principal)]
    view = vaults.effective(db, principal.id)
    context = {"vaults": items, "formats": formats.FORMATS, "values": {"format": "hocon", "owner": "me"},
               "errors": {}, "effective": [{"key": k, "value": view.values[k], "source": view.sources[k]}
                                           for k in sorted(view.values)], "merged": view.vaults}
    context.update(extra)
    return render(request, "vaults.html", context, status=status)


def _create(db, principal: Principal, request: Request, name: str, fmt: str, content: str, owner: str,
            enabled: bool, position: int):
    owner_ref = vaults.find_owner(db, principal=principal, **_owner_fields(owner))
    vault = vaults.create_vault(db, principal, name, owner_ref, fmt, content, enabled, position)
    audit.record(db, principal, "vault.create", "vault", vault.name, vault.id,
                 changes={"after": {**vaults.audit_state(vault), "owner": f"{owner_ref.kind}:{owner_ref.name}"}},
                 source=client_address(request))
    return vault


def _name_problem(name: str) -> None:
    from allotment.core import names

    problems = names.name_problems(name, "vault", 64, False)
    if problems:
        raise ValidationFailed(f"name: {problems[0]}", [FieldError("name", problems[0])])


@router.get("/ui/vaults")
def vaults_page(request: Request, principal: Signed, db: DB) -> Response:
    return _page(request, db, principal)


@router.post("/ui/vaults")
def create_vault(request: Request, principal: Signed, db: DB, name: Annotated[str, Form()] = "",
                 format: Annotated[str, Form()] = "hocon", content: Annotated[str, Form()] = "",
                 owner: Annotated[str, Form()] = "me", position: Annotated[int, Form()] = 0,
                 enabled: Annotated[bool, Form()] = False) -> Response:
    values = {"name": name, "format": format, "content": content, "owner": owner, "position": position,
              "enabled": enabled}
    try:
        _name_problem(name)
        _create(db, principal, request, name, format, content, owner, enabled, position)
    except DomainError as exc:
        if not exc.errors:
            raise
        return _page(request, db, principal, status=exc.status, errors=field_errors(exc.errors), values=values)
    return redirect(f"/ui/vaults/{name}", notice=f"Vault {name} created ({'enabled' if enabled else 'disabled'}).")


@router.post("/ui/vaults/import")
async def import_vault(request: Request, principal: Signed, db: DB, file: UploadFile,
                       name: Annotated[str, Form()] = "", owner: Annotated[str, Form()] = "me") -> Response:
    """A file becomes a vault (disabled), its format from its extension, its name from the file's unless given."""
    data = await file.read(MAX_UPLOAD + 1)
    filename = file.filename or ""
    name = name.strip() or (filename.rsplit(".", 1)[0] if "." in filename else filename)
    fmt = formats.format_of_filename(filename)
    values = {"import_name": name, "owner": owner, "format": "hocon"}
    try:
        if fmt is None:
            raise ValidationFailed("file: name a .json, .yaml, .yml, .conf or .hocon file",
                                   [FieldError("file", "name a .json, .yaml, .yml, .conf or .hocon file")])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed("file: not UTF-8 text", [FieldError("file", "not UTF-8 text")]) from None
        _name_problem(name)
        _create(db, principal, request, name, fmt, text, owner, False, 0)
    except DomainError as exc:
        if not exc.errors:
            raise
        errors = field_errors(exc.errors)
        errors["file"] = errors.pop("content", []) + errors.get("file", []) + errors.pop("name", [])
        return _page(request, db, principal, status=exc.status, errors=errors, values=values)
    return redirect(f"/ui/vaults/{name}", notice=f"Vault {name} imported from {filename}; enable it to apply it.")


def _vault_page(request: Request, db, vault, status: int = 200, **extra) -> Response:
    snap = vaults.snapshot(db, vault)
    context = {"vault": snap, "formats": formats.FORMATS, "values": snap, "errors": {}}
    context.update(extra)
    return render(request, "vault.html", context, status=status)


@router.get("/ui/vaults/{name}")
def vault_page(request: Request, principal: Signed, db: DB, name: str) -> Response:
    return _vault_page(request, db, vaults.find_vault(db, principal, name))


@router.post("/ui/vaults/{name}")
def save_vault(request: Request, principal: Signed, db: DB, name: str, format: Annotated[str, Form()] = "hocon",
               content: Annotated[str, Form()] = "", position: Annotated[int, Form()] = 0,
               enabled: Annotated[bool, Form()] = False) -> Response:
    vault = vaults.find_vault(db, principal, name)
    before = vaults.audit_state(vault)
    try:
        vaults.update_vault(db, principal, vault, {"format": format, "content": content, "position": position,
                                                   "enabled": enabled})
    except DomainError as exc:
        if not exc.errors:
            raise
        values = vaults.snapshot(db, vault) | {"format": format, "content": content, "position": position,
                                                "enabled": enabled}
        return _vault_page(request, db, vault, status=exc.status, errors=field_errors(exc.errors), values=values)
    audit.record(db, principal, "vault.update", "vault", vault.name, vault.id,
                 changes=audit.diff(before, vaults.audit_state(vault)), source=client_address(request))
    return redirect(f"/ui/vaults/{vault.name}", notice=f"Vault {vault.name} saved.")


@router.post("/ui/vaults/{name}/toggle")
def toggle_vault(request: Request, principal: Signed, db: DB, name: str) -> Response:
    vault = vaults.find_vault(db, principal, name)
    before = vaults.audit_state(vault)
    vaults.update_vault(db, principal, vault, {"enabled": not vault.enabled})
    audit.record(db, principal, "vault.update", "vault", vault.name, vault.id,
                 changes=audit.diff(before, vaults.audit_state(vault)), source=client_address(request))
    return redirect("/ui/vaults", request=request,
                    notice=f"Vault {vault.name} {'enabled' if vault.enabled else 'disabled'}.")


@router.post("/ui/vaults/{name}/delete")
def delete_vault(request: Request, principal: Signed, db: DB, name: str) -> Response:
    vault = vaults.find_vault(db, principal, name)
    before = vaults.audit_state(vault)
    vaults.delete_vault(db, principal, vault)
    audit.record(db, principal, "vault.delete", "vault", before["name"], None, changes={"before": before},
                 source=client_address(request))
    return redirect("/ui/vaults", request=request, notice=f"Vault {before['name']} deleted.")
