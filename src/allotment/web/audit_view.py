"""How the audit page shows an event: its changes as a before/after difference, and its target as a link.

Pure functions of an event's stored fields (the page passes them in), table-tested in tests/unit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

MISSING = object()


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str | None  # None: the field did not exist before (created) / after (deleted)
    after: str | None
    kind: str  # "changed", "added" or "removed"


def show(value: Any) -> str:
    """One value as a cell shows it: lists and objects as compact JSON, nothing as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str, separators=(", ", ": "))
    return str(value)


def field_changes(changes: dict[str, Any] | None) -> tuple[list[FieldChange], dict[str, str]]:
    """The fields an event changed, and the rest of what it recorded (an owner, a reason) as context.

    Services record `{"before": {...}, "after": {...}}` (either may be null for a creation or a deletion) and
    sometimes further keys; anything else is context only.
    """
    if not changes:
        return [], {}
    before, after = changes.get("before", MISSING), changes.get("after", MISSING)
    context = {k: show(v) for k, v in changes.items() if k not in ("before", "after")}
    if before is MISSING and after is MISSING:
        return [], context
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    rows = []
    for key in list(dict.fromkeys([*before, *after])):
        if key in before and key in after:
            if before[key] == after[key]:
                continue
            rows.append(FieldChange(key, show(before[key]), show(after[key]), "changed"))
        elif key in after:
            rows.append(FieldChange(key, None, show(after[key]), "added"))
        else:
            rows.append(FieldChange(key, show(before[key]), None, "removed"))
    return rows, context


def _segment(value: str) -> str:
    return quote(value, safe="")


def target_href(target_type: str, target: str | None, target_id: str | None, action: str) -> str | None:
    """The console page of what an event changed, when it has one and still may exist."""
    if action.endswith(".delete") or not (target or target_id):
        return None
    name = target or ""
    if target_type == "user" and (target_id or name):
        return f"/ui/users/{_segment(target_id or name)}"
    if target_type == "group" and (target_id or name):
        return f"/ui/groups/{_segment(target_id or name)}"
    if target_type == "job" and target_id:
        return f"/ui/jobs/{_segment(target_id)}"
    if target_type == "quota" and target_id:
        return f"/ui/quotas/{_segment(target_id)}"
    if target_type == "cluster" and name:
        return f"/ui/clusters/{_segment(name)}"
    if target_type in ("pool", "node") and "/" in name:
        return f"/ui/clusters/{_segment(name.split('/', 1)[0])}"
    if target_type == "cluster_role" and "/" in name:
        return f"/ui/clusters/{_segment(name.split('/', 1)[0])}/members"
    if target_type == "service_account" and name:
        return f"/ui/service-accounts/{_segment(name)}"
    if target_type == "resource_policy" and name:
        return f"/ui/resource-policies/{_segment(name)}"
    if target_type == "credential":
        return "/ui/credentials?owner=all"
    return None
