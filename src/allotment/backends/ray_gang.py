"""A job placed on several nodes (a gang) on Ray.

Ray's Jobs API places only a job's entrypoint (its driver) and cannot reserve resources on other nodes. So the engine
submits a gang with a small driver of its own in front of the job's command: pinned to the gang's first node (a
sliver of its `node:<ip>` resource), it creates a placement group with one bundle per node, each bundle pinned to its
node (`node:<ip>`) and holding that node's share of GPUs (and GPU-model resource), CPUs and memory, strategy
STRICT_SPREAD; it waits until Ray has reserved every bundle, then runs the command with the placement group's id in
ALLOT_PLACEMENT_GROUP_ID (hex) and the nodes in ALLOT_NODES, and exits with the command's status. The job schedules
its work into the bundles (Ray Train, or `PlacementGroupSchedulingStrategy`); the placement group lives exactly as
long as the driver, so it is released when the job ends or is stopped. The driver needs `ray` importable by the
`python3` of the Ray nodes (true of any node started with `ray start`).
"""

from __future__ import annotations

import json
import shlex

READY_TIMEOUT_S = 300  # allotment admitted the gang, so its resources are free: this only guards a node that died
NO_PLACEMENT_EXIT = 75  # EX_TEMPFAIL: Ray could not reserve the bundles

DRIVER = (
    "import json, os, subprocess, sys\n"
    "import ray\n"
    "from ray.util.placement_group import placement_group\n"
    "bundles, name, timeout, command = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]\n"
    "ray.init(address='auto', log_to_driver=False)\n"
    "pg = placement_group(bundles, strategy='STRICT_SPREAD', name=name)\n"
    "try:\n"
    "    ray.get(pg.ready(), timeout=timeout)\n"
    "except Exception as exc:\n"
    f"    print(f'allotment: Ray did not reserve the nodes of the job: {{exc}}', file=sys.stderr)\n"
    f"    sys.exit({NO_PLACEMENT_EXIT})\n"
    "env = dict(os.environ, ALLOT_PLACEMENT_GROUP_ID=pg.id.hex(), ALLOT_PLACEMENT_GROUP=name)\n"
    "sys.exit(subprocess.call(command, shell=True, env=env))\n"
)


def entrypoint(command: str, bundles: list[dict[str, float]], name: str) -> str:
    """The entrypoint of a gang: the driver above, given the bundles (one per node, in node order), the placement
    group's name and the job's own command."""
    return shlex.join(["python3", "-c", DRIVER, json.dumps(bundles, sort_keys=True), name,
                       str(READY_TIMEOUT_S), command])
