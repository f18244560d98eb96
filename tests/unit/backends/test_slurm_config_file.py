"""A Slurm job receives its owner's effective configuration (issue 17): the batch script writes it to a file of its
own and names it in ALLOT_CONFIG_FILE before the command runs. The script is run here with /bin/sh as Slurm would."""

from __future__ import annotations

import json
import os
import stat
import subprocess

from allotment.backends.base import Launch
from allotment.backends.slurm import NODE_COPY, batch_script

CONFIG = json.dumps({"sdk": {"region": "eu", "note": "$HOME `id` 'quoted'\nALLOT_CONFIG_END"}}, indent=2)


def test_the_script_writes_the_configuration_unexpanded_and_names_it(tmp_path):
    script = batch_script(Launch(job_id=1, command='cat "$ALLOT_CONFIG_FILE"; stat -c %a "$ALLOT_CONFIG_FILE"',
                                 config_file=CONFIG))
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True,
                          env={"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)})
    text, _, mode = done.stdout.rpartition("}\n")
    assert json.loads(text + "}") == json.loads(CONFIG)
    assert mode.strip() == "600"


def test_without_a_configuration_the_script_is_the_command():
    assert batch_script(Launch(job_id=1, command="train")) == "#!/bin/sh\ntrain\n"


def test_the_file_is_removed_when_the_command_ends(tmp_path):
    script = batch_script(Launch(job_id=1, command='echo "$ALLOT_CONFIG_FILE"; exit 3', config_file=CONFIG))
    done = subprocess.run(["/bin/sh", "-c", script], check=False, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)})
    assert done.returncode == 3  # the command's own status
    assert done.stdout.strip().startswith(str(tmp_path)) and not list(tmp_path.glob("allotment-config.*"))


def copy_on_a_node(path, content: str) -> subprocess.CompletedProcess:
    """The step a gang's other nodes run (srun --input=all): the file's content on standard input."""
    return subprocess.run(["/bin/sh", "-c", NODE_COPY], check=False, input=content, capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], "ALLOT_CONFIG_FILE": str(path)})


def test_another_node_creates_the_file_readable_by_the_job_only(tmp_path):
    path = tmp_path / "allotment-config.abc123"
    assert copy_on_a_node(path, CONFIG).returncode == 0
    assert path.read_text() == CONFIG and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_node_sharing_the_directory_finds_the_same_file_and_passes(tmp_path):
    path = tmp_path / "allotment-config.abc123"
    path.write_text(CONFIG)
    assert copy_on_a_node(path, CONFIG).returncode == 0


def test_a_different_file_at_the_path_stops_the_job(tmp_path):
    path = tmp_path / "allotment-config.abc123"
    path.write_text("someone else's")
    assert copy_on_a_node(path, CONFIG).returncode != 0
    assert path.read_text() == "someone else's"


def test_a_link_planted_at_the_path_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    path = tmp_path / "allotment-config.abc123"
    path.symlink_to(target)  # dangling: the file it names does not exist yet
    assert copy_on_a_node(path, CONFIG).returncode != 0
    assert not target.exists()


def test_a_gangs_script_copies_to_and_cleans_up_its_other_nodes():
    script = batch_script(Launch(job_id=1, command="train", config_file=CONFIG), nodes=3)
    steps = [line for line in script.splitlines() if "srun" in line]
    assert len(steps) == 2  # the copy, and the removal in the exit trap
    assert all("--relative=1 --nodes=2 --ntasks=2 --ntasks-per-node=1" in step for step in steps)
    assert script.index("--input=all") < script.index("\ntrain\n")
    assert "srun" not in batch_script(Launch(job_id=1, command="train", config_file=CONFIG))
