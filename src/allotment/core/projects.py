"""Project trees: the rules of nesting, as pure functions over parent maps (project id -> parent id or None).

A workspace's projects form a forest. The depth of a project is the number of projects on its path from the root,
itself included (a root project has depth 1). MAX_DEPTH bounds it: deep enough for team / area / experiment /
variant hierarchies (ClearML users rarely go past five), shallow enough that walking a chain is a handful of lookups
and a path shown in a table stays readable. Moving a project under one of its own descendants, or under itself,
would make a cycle and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MAX_DEPTH = 8

ParentMap = Mapping[int, int | None]


def ancestor_ids(parents: ParentMap, project_id: int) -> list[int]:
    """The project and its ancestors, nearest first: [project, parent, ..., root]. Stops at a cycle (which the
    service never stores) rather than looping."""
    chain: list[int] = []
    current: int | None = project_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return chain


def children_map(parents: ParentMap) -> dict[int | None, list[int]]:
    """Each project's direct children (key None: the roots), in id order."""
    children: dict[int | None, list[int]] = {}
    for project_id in sorted(parents):
        children.setdefault(parents[project_id], []).append(project_id)
    return children


def descendant_ids(parents: ParentMap, project_id: int) -> list[int]:
    """The project's sub-projects at every level, parents before their children (the project itself excluded)."""
    children = children_map(parents)
    found: list[int] = []
    frontier = list(children.get(project_id, []))
    while frontier:
        current = frontier.pop(0)
        if current in found or current == project_id:
            continue
        found.append(current)
        frontier.extend(children.get(current, []))
    return found


def subtree_height(parents: ParentMap, project_id: int) -> int:
    """Levels in the project's subtree, itself included: 1 for a project without sub-projects."""
    children = children_map(parents)

    def height(node: int, seen: frozenset[int]) -> int:
        below = [height(child, seen | {child}) for child in children.get(node, []) if child not in seen]
        return 1 + max(below, default=0)

    return height(project_id, frozenset({project_id}))


def placement_problem(parents: ParentMap, project_id: int | None, new_parent_id: int | None) -> str | None:
    """Why the project (None: a new one) cannot go under new_parent_id (None: at the root), or None when it can."""
    if new_parent_id is None:
        parent_depth = 0
    else:
        chain = ancestor_ids(parents, new_parent_id)
        if project_id is not None and project_id in chain:
            return ("a project cannot move under itself" if new_parent_id == project_id
                    else "a project cannot move under one of its own sub-projects")
        parent_depth = len(chain)
    height = 1 if project_id is None else subtree_height(parents, project_id)
    if parent_depth + height > MAX_DEPTH:
        return f"projects nest at most {MAX_DEPTH} levels deep; this would make {parent_depth + height}"
    return None


def path_of(parents: ParentMap, names: Mapping[int, str], project_id: int) -> str:
    """The project's path from its root, names joined by '/' (names never hold '/')."""
    return "/".join(names[i] for i in reversed(ancestor_ids(parents, project_id)))


def split_path(path: str) -> list[str]:
    """A project path's names, root first ('a/b/c' -> ['a', 'b', 'c']); empty segments are dropped."""
    return [part for part in path.strip().split("/") if part]


def flatten(parents: ParentMap, order: Iterable[int]) -> list[tuple[int, int]]:
    """(project id, depth from 0) in tree order: each project followed by its sub-projects; siblings keep the order
    of `order` (e.g. by name)."""
    rank = {project_id: i for i, project_id in enumerate(order)}
    children = children_map(parents)
    rows: list[tuple[int, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda c: rank.get(c, len(rank))):
            rows.append((child, depth))
            walk(child, depth + 1)

    walk(None, 0)
    return rows


# --- who may read and change a workspace's projects, models and datasets ------------------------------------------

PROJECT_ACTIONS = ("read", "modify")


def project_refusal(principal, cluster_id: int, workspace_id: int, member_role: str | None,
                    action: str) -> str | None:
    """Why the principal (core.permissions.Principal) may not `read` or `modify` the projects, jobs' project links,
    models and datasets of a workspace where it holds `member_role` (None: not a member); None when it may.

    Members read; members from `member` up modify (create, rename, move, delete, register); viewers read only, as
    for the workspace's quotas. Admins of the workspace's cluster and platform admins may do both. A credential
    scoped to another workspace acts in that workspace only."""
    from allotment.core.permissions import WORKSPACE_ROLE_ORDER

    if principal is None:
        return "sign in first"
    if action not in PROJECT_ACTIONS:
        return f"unknown project action {action}"
    if principal.workspace_id is not None and principal.workspace_id != workspace_id:
        return "your credential is scoped to another workspace"
    if principal.is_platform_admin or principal.role_on(cluster_id) == "admin":
        return None
    level = WORKSPACE_ROLE_ORDER.get(member_role or "", 0)
    if level == 0:
        return "you are not a member of this project's workspace"
    if action == "modify" and level < WORKSPACE_ROLE_ORDER["member"]:
        return "viewers of a workspace read its projects, models and datasets but may not change them"
    return None
