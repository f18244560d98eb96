"""Access rules in the console (ClearML's Access Rules page): the table of the rules the caller may see with its View
filter (resource type) and filters on workspace, resource and grantee; adding a rule; editing its level and
grantees; deleting it; and a workspace's default for objects no rule covers. Each action calls the API's route
function, so the page asks the same decision (core.permissions.access_rules_refusal) and writes the same audit
record."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from allotment.access import routes as api
from allotment.access.schemas import DefaultIn, GranteeIn, RuleCreate, RuleUpdate
from allotment.api.deps import DB, require
from allotment.api.fields import IdPath
from allotment.core.access import RESOURCE_TYPES, RULE_LEVELS
from allotment.core.permissions import AUTHENTICATED, Principal
from allotment.errors import DomainError, FieldError, ValidationFailed
from allotment.web.console import field_errors, redirect, render

router = APIRouter()
Me = Annotated[Principal, require(AUTHENTICATED)]
VIEWS = tuple(t for t in RESOURCE_TYPES if t != "folder")
GRANTEE_HINT = "user:NAME, service_account:NAME or group:NAME, separated by commas"


def _form_errors(exc: DomainError | ValidationError) -> tuple[int, dict[str, list[str]]]:
    """A form's field messages; an error that names no field (403, 404) is the console's error page."""
    if isinstance(exc, ValidationError):
        return 422, {str(e["loc"][0]) if e["loc"] else "form": [e["msg"]] for e in exc.errors()}
    if not exc.errors:
        raise exc
    errors = field_errors(exc.errors)
    # "grantees[0].name" -> under the grantees field.
    return exc.status, {("grantees" if k.startswith("grantees") else k): v for k, v in errors.items()}


def _grantees(text: str) -> list[GranteeIn]:
    """`user:alice, group:cv, service_account:ci` (a bare name is a user)."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, sep, name = part.partition(":")
        if not sep:
            kind, name = "user", part
        try:
            out.append(GranteeIn(kind=kind.strip().replace("-", "_"), name=name.strip()))
        except ValidationError:
            raise ValidationFailed(f"grantees: '{part}'", [FieldError("grantees", f"'{part}' is not one of "
                                                                                  f"{GRANTEE_HINT}")]) from None
    if not out:
        raise ValidationFailed("grantees: name at least one", [FieldError("grantees", f"name at least one: "
                                                                                      f"{GRANTEE_HINT}")])
    return out


def _page(request: Request, principal: Principal, db, filters: dict[str, str], status: int = 200,
          **extra) -> Response:
    filter_errors: dict[str, list[str]] = {}
    try:
        found = api.list_rules(principal, db, cluster=filters.get("cluster") or None,
                               workspace=filters.get("workspace") or None, resource_type=filters.get("view") or None,
                               resource=filters.get("resource") or None, grantee=filters.get("grantee") or None)
        items = found.items
    except DomainError as exc:
        if not exc.errors:
            raise
        # An unknown workspace, resource or grantee under its filter; the table is empty.
        names = {"resource_type": "view"}
        filter_errors = {f"f-{names.get(k, k)}": v for k, v in field_errors(exc.errors).items()}
        status, items = exc.status, []
    default = None
    if filters.get("workspace") and "f-workspace" not in filter_errors:
        try:
            default = api.show_default(filters.get("cluster") or "local", filters["workspace"], principal, db).default
        except DomainError:
            default = None
    context = {"rules": items, "filters": filters, "views": VIEWS, "levels": RULE_LEVELS, "default": default,
               "errors": extra.pop("errors", {}), "filter_errors": filter_errors, "values": extra.pop("values", {}),
               "grantee_hint": GRANTEE_HINT}
    context.update(extra)
    return render(request, "access_rules/list.html", context, status=status)


def _listing(cluster: str | None, workspace: str | None) -> str:
    """The table filtered on the rule's workspace (all the caller sees for a platform rule)."""
    return "/ui/access-rules" + (f"?{urlencode({'cluster': cluster, 'workspace': workspace})}" if workspace else "")


def _filters(cluster: str, workspace: str, view: str, resource: str, grantee: str) -> dict[str, str]:
    return {"cluster": cluster.strip(), "workspace": workspace.strip(), "view": view.strip(),
            "resource": resource.strip(), "grantee": grantee.strip()}


Filter = Annotated[str, Query(max_length=255)]


@router.get("/ui/access-rules")
def access_rules_page(request: Request, principal: Me, db: DB, cluster: Filter = "", workspace: Filter = "",
                      view: Filter = "", resource: Filter = "", grantee: Filter = "") -> Response:
    return _page(request, principal, db, _filters(cluster, workspace, view, resource, grantee))


@router.post("/ui/access-rules")
def create_rule(request: Request, principal: Me, db: DB, cluster: Annotated[str, Form()] = "",
                workspace: Annotated[str, Form()] = "", resource_type: Annotated[str, Form()] = "",
                resource: Annotated[str, Form()] = "", level: Annotated[str, Form()] = "read",
                grantees: Annotated[str, Form()] = "") -> Response:
    values = {"cluster": cluster, "workspace": workspace, "resource_type": resource_type, "resource": resource,
              "level": level, "grantees": grantees}
    try:
        body = RuleCreate(cluster=cluster.strip() or None, workspace=workspace.strip() or None,
                          resource_type=resource_type, resource=resource.strip() or None, level=level,
                          grantees=_grantees(grantees))
        made = api.create_rule(body, principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _form_errors(exc)
        return _page(request, principal, db, _filters(cluster, workspace, "", "", ""), status=status,
                     errors=errors, values=values)
    return redirect(_listing(made.cluster, made.workspace),
                    notice=f"Access rule {made.id} grants {made.level} on {made.resource}.", request=request)


@router.post("/ui/access-rules/default")
def set_default(request: Request, principal: Me, db: DB, cluster: Annotated[str, Form()] = "local",
                workspace: Annotated[str, Form()] = "", default: Annotated[str, Form()] = "") -> Response:
    try:
        done = api.set_default(cluster or "local", workspace, DefaultIn(default=default), principal, db, request)
    except (DomainError, ValidationError) as exc:
        status, errors = _form_errors(exc)
        return _page(request, principal, db, _filters(cluster, workspace, "", "", ""), status=status, errors=errors)
    return redirect(_listing(done.cluster, done.workspace),
                    notice=f"Objects no rule covers in {done.workspace} now grant {done.default}.", request=request)


@router.get("/ui/access-rules/{rule}")
def rule_page(request: Request, principal: Me, db: DB, rule: IdPath) -> Response:
    found = api.show_rule(rule, principal, db)
    values = {"level": found.level, "grantees": ", ".join(f"{g.kind}:{g.name}" for g in found.grantees)}
    return render(request, "access_rules/edit.html", {"rule": found, "levels": RULE_LEVELS, "values": values,
                                                      "errors": {}, "grantee_hint": GRANTEE_HINT})


@router.post("/ui/access-rules/{rule}")
def update_rule(request: Request, principal: Me, db: DB, rule: IdPath, level: Annotated[str, Form()] = "",
                grantees: Annotated[str, Form()] = "") -> Response:
    try:
        changed = api.update_rule(rule, RuleUpdate(level=level, grantees=_grantees(grantees)), principal, db,
                                  request)
    except (DomainError, ValidationError) as exc:
        status, errors = _form_errors(exc)
        found = api.show_rule(rule, principal, db)
        return render(request, "access_rules/edit.html",
                      {"rule": found, "levels": RULE_LEVELS, "values": {"level": level, "grantees": grantees},
                       "errors": errors, "grantee_hint": GRANTEE_HINT}, status=status)
    return redirect(_listing(changed.cluster, changed.workspace),
                    notice=f"Access rule {rule} saved.", request=request)


@router.post("/ui/access-rules/{rule}/delete")
def delete_rule(request: Request, principal: Me, db: DB, rule: IdPath) -> Response:
    found = api.show_rule(rule, principal, db)
    api.delete_rule(rule, principal, db, request)
    return redirect(_listing(found.cluster, found.workspace),
                    notice=f"Access rule {rule} deleted: its grantees lose what it granted.", request=request)
