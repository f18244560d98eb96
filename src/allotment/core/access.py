"""Access rules (ClearML): who may read or modify which project, job, model, dataset, quota or folder. Pure.

A rule grants one level (read-only or read-and-modify) on a resource type (every object of that type in the rule's
workspace, or everywhere for a rule without a workspace) or on one object, to a list of grantees: users, groups and
service accounts. Grants add up: a principal holds the highest level any rule covering the object grants it, so
deleting a rule removes only what that rule granted.

Inheritance follows the hierarchy: a rule on a project covers its sub-projects and the jobs, models and datasets in
them (the object's ancestor chain is walked); a rule on one job covers that job only, not its siblings. A rule on a
resource type covers the objects of that type.

When no rule covers an object at all, the workspace's default applies (ClearML: everyone read-and-modify; a workspace
may choose read-only or none). Once any rule covers it, only the grantees of the covering rules have access.
Platform admins (the built-in `admins` group) read and modify everything. A service account acting on behalf of a
user (a job's owner) is judged by that user's rules and never by an admin's rights, even when the user is one.

For speed the rules are indexed by (resource type, object id) and by (resource type, workspace), each entry mapping a
grantee to the highest level granted to it, so a check costs one lookup per ancestor and per grantee key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

NONE, READ, MODIFY = 0, 1, 2
LEVELS = {"none": NONE, "read": READ, "modify": MODIFY}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
# What a rule may grant (a rule granting nothing would be a stub).
RULE_LEVELS = ("read", "modify")
RESOURCE_TYPES = ("project", "job", "model", "dataset", "quota", "folder")
GRANTEE_KINDS = ("user", "group", "service_account")
ACTIONS = {"read": READ, "modify": MODIFY}

GranteeKey = tuple[str, int]  # ("user" | "group", id): a service account is a user row, keyed as "user"
ObjectKey = tuple[str, int]  # (resource type, object id)


def level_of(name: str) -> int:
    return LEVELS[name]


def grantee_key(kind: str, grantee_id: int) -> GranteeKey:
    """Users and service accounts share the user id space, so both key as "user"."""
    return ("group", grantee_id) if kind == "group" else ("user", grantee_id)


@dataclass(frozen=True)
class Rule:
    id: int
    resource_type: str
    level: str  # read | modify
    grantees: tuple[tuple[str, int], ...]  # (kind, id) with kind in GRANTEE_KINDS
    resource_id: int | None = None  # None: every object of the type
    workspace_id: int | None = None  # None: every workspace (a type rule), or the object's own


@dataclass(frozen=True)
class Resource:
    """One object to check: its type and id, its workspace, and its ancestors nearest first (for a job in project
    p3 under p2 under p1: (("project", 3), ("project", 2), ("project", 1)))."""

    type: str
    id: int
    workspace_id: int | None = None
    ancestors: tuple[ObjectKey, ...] = ()


@dataclass(frozen=True)
class Subject:
    """Who asks: the grantee keys rules may name (the principal itself and its groups) and whether it has admin
    rights."""

    keys: frozenset[GranteeKey]
    admin: bool = False


def subject(principal_id: int, group_ids: Iterable[int], is_platform_admin: bool,
            acting_for_owner: bool = False, admin_group_ids: Iterable[int] = ()) -> Subject:
    """A principal's subject. Acting on behalf of a user (`acting_for_owner`) it has that user's keys but never admin
    rights: the admins group is dropped from its keys too, so a rule naming `admins` does not reach it either."""
    groups = set(group_ids)
    if acting_for_owner:
        groups -= set(admin_group_ids)
    keys = frozenset([("user", principal_id), *(("group", g) for g in groups)])
    return Subject(keys, admin=is_platform_admin and not acting_for_owner)


class RuleIndex:
    """Rules indexed for checking. Build once per rule change; checks only read it."""

    __slots__ = ("admin_groups", "by_object", "by_type", "size", "subjects")

    def __init__(self, rules: Iterable[Rule], admin_groups: Iterable[int] = ()) -> None:
        # The built-in admins group's id: a service account acting for an admin does not get its rules.
        self.admin_groups = frozenset(admin_groups)
        # Subjects built for this index's checks, by what makes them: a list checks one principal many times.
        self.subjects: dict[tuple, Subject] = {}
        self.by_object: dict[ObjectKey, dict[GranteeKey, int]] = {}
        self.by_type: dict[tuple[str, int | None], dict[GranteeKey, int]] = {}
        self.size = 0
        for rule in rules:
            self.size += 1
            level = LEVELS[rule.level]
            if rule.resource_id is not None:
                entry = self.by_object.setdefault((rule.resource_type, rule.resource_id), {})
            else:
                entry = self.by_type.setdefault((rule.resource_type, rule.workspace_id), {})
            for kind, grantee_id in rule.grantees:
                key = grantee_key(kind, grantee_id)
                if entry.get(key, NONE) < level:
                    entry[key] = level


def _best(grants: dict[GranteeKey, int], keys: frozenset[GranteeKey], best: int) -> int:
    # The grantees the entry and the subject share, found in C by a set intersection (a subject has a few keys, an
    # entry a few grantees); plain comparisons rather than max(): this is the hot path of every check.
    for key in grants.keys() & keys:
        level = grants[key]
        if level > best:  # noqa: PLR1730 - max() costs a call per grantee here
            best = level
    return best


def _evaluate(index: RuleIndex, who: Subject, resource: Resource) -> tuple[int, bool]:
    """(the highest level the covering rules grant `who`, whether any rule covers the resource)."""
    covered = False
    best = NONE
    by_object, by_type, keys = index.by_object, index.by_type, who.keys
    grants = by_object.get((resource.type, resource.id))
    if grants is not None:
        covered, best = True, _best(grants, keys, best)
    for ancestor in resource.ancestors:
        grants = by_object.get(ancestor)
        if grants is not None:
            covered, best = True, _best(grants, keys, best)
    grants = by_type.get((resource.type, resource.workspace_id))
    if grants is not None:
        covered, best = True, _best(grants, keys, best)
    if resource.workspace_id is not None:
        grants = by_type.get((resource.type, None))
        if grants is not None:
            covered, best = True, _best(grants, keys, best)
    return best, covered


def access_level(index: RuleIndex, who: Subject, resource: Resource, default: int = MODIFY,
                 ceiling: int = MODIFY) -> int:
    """The level (NONE, READ, MODIFY) `who` holds on `resource`. Where rules cover it, what they grant `who`;
    elsewhere the workspace's `default`, no higher than `ceiling` (what the principal's role in the workspace allows
    by itself: a viewer reads only, whatever the default)."""
    if who.admin:
        return MODIFY
    best, covered = _evaluate(index, who, resource)
    return best if covered else min(default, ceiling)


def access_refusal(index: RuleIndex, who: Subject, resource: Resource, action: str, default: int = MODIFY,
                   label: str | None = None, ceiling: int = MODIFY) -> str | None:
    """Why `who` may not `action` (read | modify) `resource`; None when it may."""
    if who.admin:
        return None
    best, covered = _evaluate(index, who, resource)
    held = best if covered else min(default, ceiling)
    if held >= ACTIONS[action]:
        return None
    what = label or f"{resource.type} {resource.id}"
    if not covered:
        return f"you may read {what} but not modify it" if held == READ else f"you have no access to {what}"
    if held == READ:
        return f"you may read {what} but not modify it: an access rule grants you read-only access"
    return f"you have no access to {what}: no access rule grants it to you or your groups"


def covered(index: RuleIndex, resource: Resource) -> bool:
    """Whether any rule covers the resource (so rules, not the workspace's default, decide)."""
    return _evaluate(index, Subject(frozenset()), resource)[1]


def rule_problems(resource_type: str, level: str, grantees: Iterable[tuple[str, int]]) -> dict[str, list[str]]:
    """What is wrong with a rule's fields, by field name (empty when nothing)."""
    problems: dict[str, list[str]] = {}
    if resource_type not in RESOURCE_TYPES:
        problems["resource_type"] = [f"must be one of {', '.join(RESOURCE_TYPES)}, not '{resource_type}'"]
    if level not in RULE_LEVELS:
        problems["level"] = [f"must be one of {', '.join(RULE_LEVELS)}, not '{level}'"]
    grantees = list(grantees)
    if not grantees:
        problems["grantees"] = ["must name at least one user, group or service account"]
    elif any(kind not in GRANTEE_KINDS for kind, _ in grantees):
        problems["grantees"] = [f"each grantee's kind must be one of {', '.join(GRANTEE_KINDS)}"]
    return problems
