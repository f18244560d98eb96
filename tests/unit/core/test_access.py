"""Access rules (core.access) and the decision point that asks them (core.permissions.resource_refusal)."""

import pytest

from allotment.core import access as a
from allotment.core import permissions as p

USERS, ADMINS, TEAM, OTHERS = 1, 2, 7, 8  # group ids: the built-in users and admins, two teams
ALICE = p.Principal(10, "user", "alice", group_ids=frozenset({USERS, TEAM}))
BOB = p.Principal(11, "user", "bob", group_ids=frozenset({USERS, OTHERS}))
ROBOT = p.Principal(12, "service_account", "robot", group_ids=frozenset({USERS}))
ROOT = p.Principal(13, "user", "root", is_platform_admin=True, group_ids=frozenset({USERS, ADMINS}),
                   group_names=frozenset({"users", "admins"}))
# A service account acting on behalf of root (impersonation strips platform-admin rights but keeps the groups).
ROBOT_FOR_ROOT = p.Principal(13, "user", "root", group_ids=frozenset({USERS, ADMINS}), actor_id=12,
                             group_names=frozenset({"users", "admins"}))
ROBOT_FOR_ALICE = p.Principal(10, "user", "alice", group_ids=frozenset({USERS, TEAM}), actor_id=12)

# Workspace 5: projects 1 > 2 > 3 (nested); jobs 30 and 31 in project 3, job 40 in project 1; model 50 in 2.
WS = 5
P1 = a.Resource("project", 1, WS)
P2 = a.Resource("project", 2, WS, (("project", 1),))
P3 = a.Resource("project", 3, WS, (("project", 2), ("project", 1)))
J30 = a.Resource("job", 30, WS, (("project", 3), ("project", 2), ("project", 1)))
J31 = a.Resource("job", 31, WS, (("project", 3), ("project", 2), ("project", 1)))
J40 = a.Resource("job", 40, WS, (("project", 1),))
M50 = a.Resource("model", 50, WS, (("project", 2), ("project", 1)))
Q7 = a.Resource("quota", 7)
OTHER_WS_PROJECT = a.Resource("project", 9, 6)


def rule(rule_id, resource_type, level, *grantees, resource_id=None, workspace_id=WS):
    return a.Rule(rule_id, resource_type, level, tuple(grantees), resource_id, workspace_id)


ON_P2_TEAM_MODIFY = rule(1, "project", "modify", ("group", TEAM), resource_id=2)
ON_P2_BOB_READ = rule(2, "project", "read", ("user", 11), resource_id=2)
ON_J30_BOB_MODIFY = rule(3, "job", "modify", ("user", 11), resource_id=30)
ON_MODELS_EVERYONE_READ = rule(4, "model", "read", ("group", USERS))
ON_Q7_ROBOT_MODIFY = rule(5, "quota", "modify", ("service_account", 12), resource_id=7, workspace_id=None)
ON_ALL_PROJECTS_OTHERS_READ = rule(6, "project", "read", ("group", OTHERS), workspace_id=None)
ON_P1_ADMINS_READ = rule(7, "project", "read", ("group", ADMINS), resource_id=1)
ON_P1_ALICE_READ = rule(8, "project", "read", ("user", 10), resource_id=1)


def level(rules, principal, resource, default=a.MODIFY):
    index = a.RuleIndex(rules, admin_groups={ADMINS})
    return a.access_level(index, p.subject_of(principal, index), resource, default)


@pytest.mark.parametrize(
    ("rules", "principal", "resource", "default", "expected"),
    [
        # No rule at all: the workspace's default, whatever it is.
        ([], ALICE, J30, a.MODIFY, a.MODIFY),
        ([], ALICE, J30, a.READ, a.READ),
        ([], ALICE, J30, a.NONE, a.NONE),
        ([], ROBOT, P1, a.READ, a.READ),
        # A rule on a project covers it, its sub-projects and their jobs and models...
        ([ON_P2_TEAM_MODIFY], ALICE, P2, a.NONE, a.MODIFY),
        ([ON_P2_TEAM_MODIFY], ALICE, P3, a.NONE, a.MODIFY),
        ([ON_P2_TEAM_MODIFY], ALICE, J30, a.NONE, a.MODIFY),
        ([ON_P2_TEAM_MODIFY], ALICE, M50, a.NONE, a.MODIFY),
        # ...and once covered, only its grantees have access: the default no longer applies to them.
        ([ON_P2_TEAM_MODIFY], BOB, J30, a.MODIFY, a.NONE),
        ([ON_P2_TEAM_MODIFY], ROBOT, P3, a.MODIFY, a.NONE),
        # ...but not its parent or the parent's other jobs, which keep the default.
        ([ON_P2_TEAM_MODIFY], BOB, P1, a.READ, a.READ),
        ([ON_P2_TEAM_MODIFY], BOB, J40, a.MODIFY, a.MODIFY),
        # A rule on one job does not cover its siblings.
        ([ON_J30_BOB_MODIFY], BOB, J30, a.NONE, a.MODIFY),
        ([ON_J30_BOB_MODIFY], BOB, J31, a.NONE, a.NONE),
        ([ON_J30_BOB_MODIFY], ALICE, J31, a.READ, a.READ),
        ([ON_J30_BOB_MODIFY], ALICE, J30, a.MODIFY, a.NONE),
        # Grants add up: the highest level of every covering rule.
        ([ON_P2_TEAM_MODIFY, ON_P2_BOB_READ], BOB, J30, a.NONE, a.READ),
        ([ON_P2_BOB_READ, ON_J30_BOB_MODIFY], BOB, J30, a.NONE, a.MODIFY),
        ([ON_P2_BOB_READ, ON_J30_BOB_MODIFY], BOB, J31, a.NONE, a.READ),
        ([ON_P1_ALICE_READ, ON_P2_TEAM_MODIFY], ALICE, J30, a.NONE, a.MODIFY),
        # A rule on a resource type covers every object of the type in its workspace (or everywhere without one).
        ([ON_MODELS_EVERYONE_READ], BOB, M50, a.MODIFY, a.READ),
        ([ON_MODELS_EVERYONE_READ], ROBOT, M50, a.NONE, a.READ),
        ([ON_MODELS_EVERYONE_READ], BOB, J30, a.NONE, a.NONE),
        ([ON_ALL_PROJECTS_OTHERS_READ], BOB, OTHER_WS_PROJECT, a.NONE, a.READ),
        ([ON_ALL_PROJECTS_OTHERS_READ], ALICE, OTHER_WS_PROJECT, a.MODIFY, a.NONE),
        ([rule(9, "project", "read", ("user", 11))], BOB, OTHER_WS_PROJECT, a.NONE, a.NONE),
        # Rules apply to service accounts as to users; a quota rule without a workspace.
        ([ON_Q7_ROBOT_MODIFY], ROBOT, Q7, a.NONE, a.MODIFY),
        ([ON_Q7_ROBOT_MODIFY], ALICE, Q7, a.MODIFY, a.NONE),
        # Platform admins read and modify everything, whatever the rules.
        ([ON_J30_BOB_MODIFY], ROOT, J30, a.NONE, a.MODIFY),
        ([ON_P2_TEAM_MODIFY], ROOT, M50, a.NONE, a.MODIFY),
        # A service account acting for a job's owner gets the owner's access...
        ([ON_P2_TEAM_MODIFY], ROBOT_FOR_ALICE, J30, a.NONE, a.MODIFY),
        ([ON_J30_BOB_MODIFY], ROBOT_FOR_ALICE, J30, a.MODIFY, a.NONE),
        # ...never an admin's: neither the admin bypass nor rules naming the admins group.
        ([ON_J30_BOB_MODIFY], ROBOT_FOR_ROOT, J30, a.MODIFY, a.NONE),
        ([ON_P1_ADMINS_READ], ROBOT_FOR_ROOT, P1, a.MODIFY, a.NONE),
        ([], ROBOT_FOR_ROOT, P1, a.READ, a.READ),
    ],
)
def test_access_level(rules, principal, resource, default, expected):
    assert level(rules, principal, resource, default) == expected


def test_deleting_a_rule_removes_only_what_it_granted():
    rules = [ON_P2_BOB_READ, ON_J30_BOB_MODIFY, ON_P2_TEAM_MODIFY]
    assert level(rules, BOB, J30, a.NONE) == a.MODIFY
    without_job_rule = [r for r in rules if r.id != ON_J30_BOB_MODIFY.id]
    assert level(without_job_rule, BOB, J30, a.NONE) == a.READ  # the project rule's grant stays
    assert level(without_job_rule, ALICE, J30, a.NONE) == a.MODIFY  # others' grants stay
    # The last rule gone, nothing covers the job: the workspace's default is back.
    assert level([], BOB, J30, a.READ) == a.READ


@pytest.mark.parametrize(
    ("rules", "principal", "resource", "action", "refused"),
    [
        ([], ALICE, J30, "modify", None),
        ([ON_P2_BOB_READ], BOB, J30, "read", None),
        ([ON_P2_BOB_READ], BOB, J30, "modify", "read-only"),
        ([ON_P2_BOB_READ], ALICE, J30, "read", "no access"),
        ([], None, J30, "read", "sign in"),
    ],
)
def test_resource_refusal(rules, principal, resource, action, refused):
    index = a.RuleIndex(rules, admin_groups={ADMINS})
    answer = p.resource_refusal(principal, index, resource, action, label="job 30")
    if refused is None:
        assert answer is None
    else:
        assert refused in answer


def test_a_credential_scoped_to_another_workspace_reaches_nothing_there():
    scoped = p.Principal(10, "user", "alice", group_ids=frozenset({USERS, TEAM}), workspace_id=6)
    index = a.RuleIndex([])
    assert "scoped to another workspace" in p.resource_refusal(scoped, index, J30, "read")
    assert p.resource_refusal(scoped, index, OTHER_WS_PROJECT, "modify") is None


@pytest.mark.parametrize(
    ("fields", "problem_fields"),
    [
        (("project", "read", [("user", 1)]), set()),
        (("queue", "read", [("user", 1)]), {"resource_type"}),
        (("job", "write", [("group", 1)]), {"level"}),
        (("job", "modify", []), {"grantees"}),
        (("job", "modify", [("robot", 1)]), {"grantees"}),
    ],
)
def test_rule_problems(fields, problem_fields):
    assert set(a.rule_problems(*fields)) == problem_fields


QUEUE_ADMIN = p.Principal(20, "user", "qa", group_ids=frozenset({USERS, 3}),
                          group_names=frozenset({"users", "queue-admins"}))


@pytest.mark.parametrize(
    ("principal", "scope", "expected"),
    [
        (QUEUE_ADMIN, p.Scope(cluster_id=1), True),  # without any cluster role
        (p.Principal(21, "user", "ca", cluster_roles={1: "admin"}), p.Scope(cluster_id=1), True),
        (p.Principal(21, "user", "ca", cluster_roles={1: "admin"}), p.Scope(cluster_id=2), False),
        (p.Principal(22, "user", "cm", cluster_roles={1: "manager"}), p.Scope(cluster_id=1), False),
        (ALICE, p.Scope(cluster_id=1), False),
        (ROOT, p.Scope(cluster_id=1), True),
        # A service account acting for a queue admin is not one.
        (p.Principal(20, "user", "qa", group_names=frozenset({"queue-admins"}), actor_id=12), p.Scope(cluster_id=1),
         False),
        (None, p.Scope(cluster_id=1), False),
    ],
)
def test_quota_admins(principal, scope, expected):
    assert p.allowed(principal, p.QUOTA_ADMIN, scope) is expected


@pytest.mark.parametrize(
    ("principal", "action", "role", "global_rule", "refused"),
    [
        (ROOT, "manage", None, True, False),
        (ALICE, "manage", "admin", False, False),
        (ALICE, "manage", "owner", False, False),
        (ALICE, "manage", "member", False, True),
        (ALICE, "read", "viewer", False, False),
        (ALICE, "read", None, False, True),
        (ALICE, "manage", "owner", True, True),
        (ROBOT_FOR_ROOT, "manage", None, False, True),
    ],
)
def test_who_may_grant(principal, action, role, global_rule, refused):
    assert (p.access_rules_refusal(principal, action, role, global_rule) is not None) is refused


@pytest.mark.parametrize(
    ("rules", "principal", "role_level", "action", "refused"),
    [
        # Not a reader of the workspace: refused in the role's words, rules or not (admins excepted).
        ([ON_P2_TEAM_MODIFY], ALICE, a.NONE, "read", "not a member"),
        ([], ROOT, a.NONE, "modify", None),
        # A viewer reads only where no rule covers the object, whatever the default...
        ([], ALICE, a.READ, "read", None),
        ([], ALICE, a.READ, "modify", "viewers"),
        # ...and where rules cover it, they decide: a viewer granted modify may modify, a member granted read may not.
        ([ON_P2_TEAM_MODIFY], ALICE, a.READ, "modify", None),
        ([ON_P2_BOB_READ], BOB, a.MODIFY, "modify", "read-only"),
    ],
)
def test_the_workspace_role_caps_the_default_and_rules_decide_where_they_cover(rules, principal, role_level, action,
                                                                               refused):
    index = a.RuleIndex(rules, admin_groups={ADMINS})
    why = "not a member" if role_level == a.NONE else "viewers may only read"
    answer = p.resource_refusal(principal, index, J30, action, role_level=role_level, role_refusal=why)
    if refused is None:
        assert answer is None
    else:
        assert refused in answer


def test_admins_of_the_cluster_are_not_bound_by_rules_unless_acting_for_a_user():
    cluster_admin = p.Principal(30, "user", "ca", cluster_roles={4: "admin"}, group_ids=frozenset({USERS}))
    acting = p.Principal(30, "user", "ca", cluster_roles={4: "admin"}, group_ids=frozenset({USERS}), actor_id=12)
    index = a.RuleIndex([ON_J30_BOB_MODIFY], admin_groups={ADMINS})
    assert p.resource_refusal(cluster_admin, index, J30, "modify", cluster_id=4) is None
    assert p.resource_refusal(cluster_admin, index, J30, "read", cluster_id=5) is not None  # another cluster's
    assert p.resource_refusal(acting, index, J30, "read", cluster_id=4) is not None
    assert p.access_rules_refusal(cluster_admin, "manage", None, cluster_id=4) is None
    assert p.access_rules_refusal(cluster_admin, "manage", None, cluster_id=5) is not None
    assert p.access_rules_refusal(acting, "manage", None, cluster_id=4) is not None


def _naive_level(rules, who_keys, resource, default):
    """The rules' meaning written out plainly, rule by rule: the reference the index must agree with."""
    covering = []
    for r in rules:
        if r.resource_id is not None:
            hit = (r.resource_type, r.resource_id) in {(resource.type, resource.id), *resource.ancestors}
        else:
            hit = r.resource_type == resource.type and r.workspace_id in (None, resource.workspace_id)
        if hit:
            covering.append(r)
    if not covering:
        return default
    levels = [a.LEVELS[r.level] for r in covering for kind, gid in r.grantees if a.grantee_key(kind, gid) in who_keys]
    return max(levels, default=a.NONE)


def test_the_index_agrees_with_the_rules_read_one_by_one():
    import importlib.util
    import random
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "access_bench.py"
    spec = importlib.util.spec_from_file_location("access_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    make_rules, project_tree = bench.make_rules, bench.project_tree
    rng = random.Random(3)
    projects, contents = project_tree(rng)
    rules = make_rules(rng, 3000, projects, contents)
    index = a.RuleIndex(rules)
    everything = projects + contents
    for _ in range(2000):
        keys = frozenset({("user", rng.randint(100, 2099)), ("user", rng.randint(3000, 3199)),
                          *(("group", g) for g in rng.sample(range(10, 310), 3))})
        resource = rng.choice(everything)
        default = rng.choice((a.NONE, a.READ, a.MODIFY))
        assert a.access_level(index, a.Subject(keys), resource, default) == \
            _naive_level(rules, keys, resource, default), resource
