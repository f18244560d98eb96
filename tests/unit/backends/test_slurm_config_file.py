"""A Slurm job receives its owner's effective configuration (issue 17): the batch script writes it to a file of its
own and names it in ALLOT_CONFIG_FILE before the command runs. The script is run here with /bin/sh as Slurm would."""

from __future__ import annotations

import json
import os
import stat
import subprocess

from allotment.backends.base import Launch
from allotment.backends.slurm import batch_script

CONFIG = json.dumps({"sdk": {"region": "eu", "note": "$HOME `id` 'quoted'\nALLOT_CONFIG_END"}}, indent=2)


def test_the_script_writes_the_configuration_unexpanded_and_names_it(tmp_path):
    script = batch_script(Launch(job_id=1, command='cat "$ALLOT_CONFIG_FILE"; stat -c %a "$ALLOT_CONFIG_FILE"',
                                 config_file=CONFIG))
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True,
                          env={"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)})
    text, _, mode = done.stdout.rpartition("}\n")
    assert json.loads(text + "}") == json.loads(CONFIG)
    assert mode.strip() == "600"
    (written,) = tmp_path.glob("allotment-config.*")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_without_a_configuration_the_script_is_the_command():
    assert batch_script(Launch(job_id=1, command="train")) == "#!/bin/sh\ntrain\n"
