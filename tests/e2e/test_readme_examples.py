"""The README's CLI examples, run as written with the real `allot` against a real server, so that an example cannot
silently do nothing.

Which blocks run is chosen in README.md itself: a fenced shell block whose opening fence follows the line
`<!-- example: run -->` (blank lines between them allowed) is run line by line with bash, in README order, in one world. After each line the effect of
each `allot` command on it is checked against what its own arguments say (a quota created with `--gpu 16 --gpu-limit
32` has that entry, a scale leaves each quota with the same entries and the new size, a set keeps what it did not
name, a provision steps the configuration version by one, a shown queued job says why it waits with the numbers).

The examples presuppose a cluster they do not build: nodes gpu-01 and gpu-02 (simulated, so nothing runs on this
host), PAI's Quota1 tree (128 GPUs, children of 48 and 80) in pool a100, ClearML's pool "Bare Metal", group ml-team,
a tree.json the admin prepared (the live configuration with one quota more, written when a line names it), and job
42 being the job the example submits (41 jobs come before it). Pool h100 ends up with 3 GPUs, so the example's
4-GPU job stays queued and can be shown and cancelled.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e.clitools import allot, allot_executable, api, login_config, ok, start_server, stop_server

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = re.compile(r"^<!--\s*example:\s*run\s*-->\s*$")
FENCE = re.compile(r"^```(sh|bash|shell)\s*$")
README_JOB_ID = 42
NODES = """nodes:
- {name: gpu-01, cpu: 64, memory: 512Gi, gpus: 2, gpu_model: H100}
- {name: gpu-02, cpu: 64, memory: 512Gi, gpus: 4, gpu_model: H100}
- {name: a100-01, cpu: 64, memory: 512Gi, gpus: 8, gpu_model: A100}
- {name: bm-01, cpu: 32, memory: 256Gi, gpus: 4, gpu_model: L4}
"""


@dataclass
class Block:
    heading: str
    line_no: int  # of the opening fence, 1-based
    lines: list[tuple[int, str]] = field(default_factory=list)


def marked_blocks(text: str) -> list[Block]:
    """Fenced shell blocks whose opening fence follows a marker line."""
    blocks: list[Block] = []
    lines = text.splitlines()
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        fence = i + 1
        while MARKER.match(line.strip()) and fence < len(lines) and not lines[fence].strip():
            fence += 1  # blank lines between the marker and the fence are allowed
        if MARKER.match(line.strip()) and fence < len(lines) and FENCE.match(lines[fence].strip()):
            block = Block(heading, fence + 1)
            i = fence + 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                if lines[i].strip() and not lines[i].strip().startswith("#"):
                    block.lines.append((i + 1, lines[i]))
                i += 1
            blocks.append(block)
        i += 1
    return blocks


def commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line (split at `;` and `&&`, comments dropped); a pipeline is one command
    whose words include `|`."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in (";", "&&"):
            out.append([])
        else:
            out[-1].append(token)
    return [c for c in out if c]


def options(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Positional words and `--option value` pairs of an `allot` command (words after `--` are positional)."""
    words: list[str] = []
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            words.extend(argv[i:])
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if eq:
                opts.setdefault(name, []).append(value)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                opts.setdefault(name, []).append(argv[i + 1])
                i += 1
            else:
                opts.setdefault(name, []).append("")
            i += 1
            continue
        words.append(word)
        i += 1
    return words, opts


# --- the world the examples presuppose -------------------------------------------------------------------------


@dataclass
class World:
    root: Path
    config_dir: Path
    workdir: Path

    def get(self, path: str) -> dict:
        return api(self.config_dir, "GET", path).json()

    def quotas(self) -> dict[str, dict]:
        return {q["name"]: q for q in self.get("quotas?cluster=local")["items"]}

    def config(self) -> dict:
        return self.get("clusters/local/resource-config")


def _wait_for_nodes(world: World, names: set[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if names <= {n["name"] for n in world.get("clusters/local/nodes")["items"]}:
            return
        time.sleep(0.5)
    pytest.fail(f"the simulated engine did not report nodes {sorted(names)} within 60 s")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("readme")
    proc, server = start_server(root)
    try:
        config_dir = login_config(server, root / "cli", server.admin_username, server.admin_password)
        w = World(root, config_dir, root / "work")
        w.workdir.mkdir()

        def run(*args: str) -> None:
            ok(allot(*args, config_dir=config_dir))

        (root / "nodes.yaml").write_text(NODES)
        run("admin", "update-cluster", "local", "--backend", "simulated", "--nodes-file", str(root / "nodes.yaml"))
        _wait_for_nodes(w, {"gpu-01", "gpu-02", "a100-01", "bm-01"})
        run("pools", "create", "a100", "--node", "a100-01")
        run("pools", "create", "Bare Metal", "--node", "bm-01")
        run("admin", "groups", "create", "ml-team")
        run("quotas", "create", "Quota1", "--pool", "a100", "--gpu", "128", "--gpu-limit", "128",
            "--child-preemption")
        for name, size in (("Quota1.1", "48"), ("Quota1.2", "80")):
            run("quotas", "create", name, "--parent", "Quota1", "--pool", "a100", "--gpu", size, "--gpu-limit", size)
        # Jobs 1..41, so that the example's job is job 42; they can never fit, so they wait until cancelled.
        run("quotas", "create", "earlier-jobs")
        batch = [{"quota": "earlier-jobs", "gpu": 100, "command": ["true"]}] * (README_JOB_ID - 1)
        ids = api(config_dir, "POST", "jobs/batch", json={"jobs": batch}).json()["ids"]
        assert max(ids) == README_JOB_ID - 1, ids
        for job_id in ids:
            api(config_dir, "POST", f"jobs/{job_id}/cancel")
        yield w
    finally:
        stop_server(proc)


def prepare(world: World, argv: list[str]) -> None:
    """Files a command names that the admin would have prepared: tree.json is the live configuration with one quota
    more (so provisioning it visibly changes something)."""
    words, opts = options(argv)
    if words[:4] == ["allot", "quotas", "config", "draft"] and opts.get("--file"):
        document = {k: v for k, v in world.get("clusters/local/resource-config/draft").items()
                    if k not in ("based_on_version", "stale")}
        document["quotas"].append({"name": "from-tree-json", "resources": [
            {"resource": "gpu", "pool": "*", "guarantee": "1", "limit": "2"}]})
        (world.workdir / opts["--file"][0]).write_text(json.dumps(document, indent=2))


# --- what each command says it does ----------------------------------------------------------------------------


@dataclass
class Before:
    quotas: dict[str, dict]
    config: dict


def entry_keys(quota: dict, resource: str | None = None) -> dict[tuple[str, str], dict]:
    return {(r["resource"], r["pool"]): {k: r[k] for k in ("guarantee", "limit", "lending_limit")}
            for r in quota["resources"] if resource is None or r["resource"] == resource}


def check_pools(world: World, words, opts, before, output) -> None:
    name = words[3]
    devices = world.get("clusters/local/devices")["items"]
    for node in opts.get("--node", []):
        held = [d for d in devices if d["node"] == node]
        assert held and all(d["pool"] == name for d in held), (node, held)
    for ref in opts.get("--device", []):
        node, _, index = ref.rpartition(":")
        (device,) = [d for d in devices if d["node"] == node and d["index"] == int(index)]
        assert device["pool"] == name, device


def check_quota_create(world: World, words, opts, before, output) -> None:
    quota = world.get(f"quotas/{words[3]}")
    pool = (opts.get("--pool") or ["*"])[0]
    entries = entry_keys(quota)
    for resource in ("gpu", "cpu", "memory"):
        guarantee, limit = opts.get(f"--{resource}"), opts.get(f"--{resource}-limit")
        if guarantee or limit:
            entry = entries[(resource, pool)]
            assert entry["guarantee"] == (guarantee or ["0"])[0], entry
            assert entry["limit"] == (limit or ["unlimited"])[0], entry
    check_quota_fields(quota, opts)


def check_quota_fields(quota: dict, opts: dict[str, list[str]]) -> None:
    for option, key, read in (("--reclaim", "reclaim", str), ("--within-quota-preemption", "within_quota_preemption",
                                                                str), ("--weight", "weight", float),
                              ("--min-runtime", "min_runtime_s", int), ("--parent", "parent", str)):
        if option in opts:
            assert quota[key] == read(opts[option][0]), (key, quota[key])


def check_quota_set(world: World, words, opts, before, output) -> None:
    name = words[3]
    quota = world.get(f"quotas/{name}")
    check_quota_fields(quota, opts)
    old, new = entry_keys(before.quotas[name]), entry_keys(quota)
    changed = {r for r in ("gpu", "cpu", "memory") if opts.get(f"--{r}") or opts.get(f"--{r}-limit")}
    for key, entry in old.items():
        if key[0] not in changed:
            assert new.get(key) == entry, f"`{' '.join(words)}` changed {key}: {entry} -> {new.get(key)}"
    for resource in changed:
        pool = (opts.get("--pool") or [None])[0]
        if pool is None:
            (pool,) = [p for r, p in old if r == resource] or ["*"]
        entry, was = new[(resource, pool)], old.get((resource, pool), {"guarantee": "0", "limit": "unlimited"})
        assert entry["guarantee"] == (opts.get(f"--{resource}") or [was["guarantee"]])[0], entry
        assert entry["limit"] == (opts.get(f"--{resource}-limit") or [was["limit"]])[0], entry


def check_quota_scale(world: World, words, opts, before, output) -> None:
    resource = (opts.get("--resource") or ["gpu"])[0]
    after = world.quotas()
    for pair in words[3:]:
        name, _, amount = pair.partition("=")
        old, new = entry_keys(before.quotas[name], resource), entry_keys(after[name], resource)
        assert set(new) == set(old), f"scaling {name} changed its {resource} entries: {sorted(old)} -> {sorted(new)}"
        pool = (opts.get("--pool") or [None])[0]
        (key,) = [k for k in old if pool is None or k[1] == pool]
        assert new[key]["guarantee"] == amount, (name, new[key])


def check_quota_bind(world: World, words, opts, before, output) -> None:
    bindings = {(b["kind"], b["name"]) for b in world.get(f"quotas/{words[3]}/bindings")}
    for kind in ("user", "group", "workspace"):
        for ref in opts.get(f"--{kind}", []):
            assert (kind, ref) in bindings, bindings


def check_draft(world: World, words, opts, before, output) -> None:
    if "--file" not in opts:
        return
    saved = json.loads((world.workdir / opts["--file"][0]).read_text())
    config = world.config()
    assert config["has_draft"] and not config["draft_stale"], config
    assert [q["name"] for q in config["draft"]["quotas"]] == [q["name"] for q in saved["quotas"]]


def check_provision(world: World, words, opts, before, output) -> None:
    config = world.config()
    assert config["version"] == before.config["version"] + 1, (before.config["version"], config["version"])
    assert not config["has_draft"]
    assert sorted(q["name"] for q in config["provisioned"]["quotas"]) == \
        sorted(q["name"] for q in before.config["draft"]["quotas"])


def check_profile(world: World, words, opts, before, output) -> None:
    profile = world.get(f"clusters/local/profiles/{words[3]}")
    if "--gpu" in opts:
        assert profile["gpu"] == opts["--gpu"][0], profile
    assert [p["pool"] for p in profile["pools"]] == opts.get("--pool", []), profile


def check_policy(world: World, words, opts, before, output) -> None:
    policy = world.get(f"resource-policies/{words[3]}")
    if "--gpu" in opts:
        assert policy["gpu"] == int(opts["--gpu"][0]), policy


def check_submit(world: World, words, opts, before, output) -> None:
    job = world.get(f"jobs/{README_JOB_ID}")
    command = words[words.index("--") + 1:]
    assert job["command"] == command, job
    for option, key in (("--quota", "quota"), ("--gpu", "gpu"), ("--priority-class", "priority_class")):
        if option in opts:
            assert job[key] == opts[option][0], (key, job)


def check_show(world: World, words, opts, before, output) -> None:
    reason = [line for line in output.splitlines() if line.startswith("reason")]
    state = [line.split()[-1] for line in output.splitlines() if line.startswith("state")]
    assert state, output
    if state[0] == "queued":  # "a queued job shows why it waits, with the numbers"
        assert reason and re.search(r"\d", reason[0]), output


def check_cancel(world: World, words, opts, before, output) -> None:
    job = world.get(f"jobs/{words[3]}")
    assert job["state"] == "cancelled" or job.get("cancel_requested_at"), job


CHECKS: dict[tuple[str, ...], Callable] = {
    ("pools", "create"): check_pools,
    ("pools", "assign"): check_pools,
    ("quotas", "create"): check_quota_create,
    ("quotas", "set"): check_quota_set,
    ("quotas", "scale"): check_quota_scale,
    ("quotas", "bind"): check_quota_bind,
    ("quotas", "config", "draft"): check_draft,
    ("quotas", "config", "provision"): check_provision,
    ("profiles", "create"): check_profile,
    ("policies", "create"): check_policy,
    ("jobs", "submit"): check_submit,
    ("jobs", "show"): check_show,
    ("jobs", "cancel"): check_cancel,
}


def check_for(words: list[str]) -> Callable | None:
    for size in (3, 2):
        found = CHECKS.get(tuple(words[1:1 + size]))
        if found:
            return found
    return None


def run_shell(world: World, text: str) -> subprocess.CompletedProcess:
    """Shell text with bash, `allot` on the PATH and logged in as the admin, in the admin's directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOT_")}
    env.update(ALLOT_CONFIG_DIR=str(world.config_dir), COLUMNS="200", NO_COLOR="1", TERM="dumb",
               PATH=f"{Path(allot_executable()).parent}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], cwd=world.workdir, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def steps(line: str) -> list[tuple[str, list[str] | None]]:
    """What to run for a line: each simple command on its own (so each one's effect is checked before the next
    runs), or the whole line when it holds anything beyond plain words (variables, pipes, redirections)."""
    argvs = commands(line)
    if re.search(r"[$`<>|]", line.split("#", 1)[0]) or any(w in ("&", "&&") for argv in argvs for w in argv):
        return [(line, None)]
    return [(shlex.join(argv), argv) for argv in argvs]


def test_the_readme_examples_do_what_they_say(world):
    blocks = marked_blocks(README.read_text())
    if not blocks:
        pytest.skip("README.md marks no example to run: put `<!-- example: run -->` on the line right above the "
                    "opening fence of each shell block to run (the quota and job examples)")
    checked = 0
    for block in blocks:
        for line_no, line in block.lines:
            for text, argv in steps(line):
                prepare(world, argv or [])
                before = Before(world.quotas(), world.config())
                result = run_shell(world, text)
                where = f"README.md line {line_no} ({block.heading}): `{text}`"
                assert result.returncode == 0, f"{where}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
                if not argv or argv[0] != "allot":
                    continue
                words, opts = options(argv)
                check = check_for(words)
                if check is None:
                    continue
                try:
                    check(world, words, opts, before, result.stdout)
                except AssertionError as exc:
                    raise AssertionError(f"{where} did not do what it says: {exc}") from exc
                checked += 1
    assert checked, "the marked blocks hold no allot command whose effect this test knows how to check"
