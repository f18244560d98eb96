"""Access-rule checks per second through the decision point (core.permissions.resource_refusal -> core.access).

The set-up the access-rules issue names: 10,000 rules and a project tree 6 levels deep. Here: 20 workspaces, each
with a project tree of 6 levels (fan-out 3 per level: 364 projects per workspace, 7,280 in all), 10 jobs, 2 models
and 2 datasets per leaf project; 10,000 rules drawn by a seeded generator over projects, jobs, models, datasets and
resource types, each naming 1 to 4 grantees among 2,000 users, 200 service accounts and 300 groups. Checks ask
read or modify for a random principal (a user in 3 groups, a service account, or a service account acting for a
user) on a random resource, most of them jobs at the bottom of the tree (the longest ancestor chain).

Run:  python benchmarks/access_bench.py [--checks 300000] [--rules 10000] [--seed 7] [--json]
Target: at least 100,000 checks per second of one core. Reported both per second of the process's CPU time (what
the target is judged on: it does not change when other processes share the machine) and per second of wall time.
Building the index is timed separately.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from allotment.core import access
from allotment.core.permissions import Principal, resource_refusal

DEPTH, FANOUT, WORKSPACES = 6, 3, 20
USERS_GROUP, ADMINS_GROUP = 1, 2


def project_tree(rng: random.Random):
    """Resources of every workspace: projects with their ancestor chains, and jobs, models, datasets in the leaves."""
    resources: list[access.Resource] = []
    leaves: list[access.Resource] = []
    next_id = 1
    for workspace in range(1, WORKSPACES + 1):
        level = [access.Resource("project", next_id, workspace)]
        next_id += 1
        resources.extend(level)
        for _ in range(DEPTH - 1):
            children = []
            for parent in level:
                chain = (("project", parent.id), *parent.ancestors)
                for _ in range(FANOUT):
                    children.append(access.Resource("project", next_id, workspace, chain))
                    next_id += 1
            resources.extend(children)
            level = children
        leaves.extend(level)
    contents: list[access.Resource] = []
    for leaf in leaves:
        chain = (("project", leaf.id), *leaf.ancestors)
        for kind, count in (("job", 10), ("model", 2), ("dataset", 2)):
            for _ in range(count):
                contents.append(access.Resource(kind, next_id, leaf.workspace_id, chain))
                next_id += 1
    return resources, contents


def make_rules(rng: random.Random, count: int, projects, contents) -> list[access.Rule]:
    rules = []
    for rule_id in range(1, count + 1):
        grantees = tuple(rng.choice((("user", rng.randint(100, 2099)), ("service_account", rng.randint(3000, 3199)),
                                     ("group", rng.randint(10, 309)))) for _ in range(rng.randint(1, 4)))
        level = rng.choice(access.RULE_LEVELS)
        draw = rng.random()
        if draw < 0.01:  # a rule on a resource type
            kind = rng.choice(("project", "job", "model", "dataset"))
            rules.append(access.Rule(rule_id, kind, level, grantees, None, rng.randint(1, WORKSPACES)))
        else:
            target = rng.choice(projects) if draw < 0.5 else rng.choice(contents)
            rules.append(access.Rule(rule_id, target.type, level, grantees, target.id, target.workspace_id))
    return rules


def principals(rng: random.Random, count: int) -> list[Principal]:
    out = []
    for _ in range(count):
        groups = frozenset({USERS_GROUP, *rng.sample(range(10, 310), 3)})
        draw = rng.random()
        if draw < 0.8:
            out.append(Principal(rng.randint(100, 2099), "user", "u", group_ids=groups))
        elif draw < 0.9:
            out.append(Principal(rng.randint(3000, 3199), "service_account", "s", group_ids=frozenset({USERS_GROUP})))
        else:  # a service account acting for a job's owner
            out.append(Principal(rng.randint(100, 2099), "user", "u", group_ids=groups, actor_id=3000))
    return out


def run(checks: int, rule_count: int, seed: int) -> dict:
    rng = random.Random(seed)
    projects, contents = project_tree(rng)
    rules = make_rules(rng, rule_count, projects, contents)
    started = time.perf_counter()
    index = access.RuleIndex(rules, admin_groups={ADMINS_GROUP})
    build_s = time.perf_counter() - started
    people = principals(rng, 1000)
    deepest = [c for c in contents if c.type == "job"]
    queries = [(rng.choice(people), rng.choice(deepest) if rng.random() < 0.8 else rng.choice(projects),
                rng.choice(("read", "modify"))) for _ in range(min(checks, 100_000))]
    granted = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    done = 0
    while done < checks:
        for principal, resource, action in queries:
            if resource_refusal(principal, index, resource, action, access.MODIFY) is None:
                granted += 1
            done += 1
            if done == checks:
                break
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"rules": len(rules), "projects": len(projects), "objects": len(projects) + len(contents),
            "depth": DEPTH, "checks": checks, "granted": granted, "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(elapsed, 3), "checks_per_cpu_second": round(checks / cpu),
            "checks_per_wall_second": round(checks / elapsed), "index_build_ms": round(build_s * 1000, 1),
            "target_checks_per_second": 100_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=300_000)
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.checks, args.rules, args.seed)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>26}: {value:,}" if isinstance(value, int) else f"{key:>26}: {value}")
    verdict = "met" if result["checks_per_cpu_second"] >= result["target_checks_per_second"] else "NOT met"
    print(f"target of 100,000 checks per CPU second {verdict}")


if __name__ == "__main__":
    main()
