"""DKube's single user out of the box, for real: a fresh server, and `allot jobs submit -- echo hi` with nothing set
up runs to success on the local engine."""

from __future__ import annotations

import json
import time

from e2e.clitools import allot, login_config, ok, start_server, stop_server


def test_a_fresh_install_runs_the_first_job_with_no_setup(tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    proc, server = start_server(root, bootstrap_default_quota="true")
    try:
        config = login_config(server, tmp_path / "cli", server.admin_username, server.admin_password)
        job = json.loads(ok(allot("jobs", "submit", "--json", "--", "echo", "hi", config_dir=config)).stdout)
        assert job["quota"] == "default"
        deadline = time.time() + 90
        while True:
            shown = json.loads(ok(allot("jobs", "show", str(job["id"]), "--json", config_dir=config)).stdout)
            if shown["state"] in ("succeeded", "failed", "cancelled") or time.time() > deadline:
                break
            time.sleep(0.5)
        assert shown["state"] == "succeeded", shown
        log = server.data_dir / "jobs" / f"job-{job['id']}.log"
        assert "hi" in log.read_text(errors="replace").split()
    finally:
        stop_server(proc)
