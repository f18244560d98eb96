"""Talking to Slurm: a small client of slurmrestd (JWT, `openapi/v0.0.38`) and a fallback through the commands.

Why our own client: no PyPI client fits Slurm 22.05 (Debian 12's slurm-wlm). pyslurm has no 22.05 build, and the
clients generated from slurmrestd's OpenAPI document fail against the real server. The engine needs five calls
(submit, list jobs, cancel, list nodes, and the document itself to check the version), so httpx does it here.

Both clients speak in the same terms: a `JobSpec` to submit, and jobs and nodes as the dicts slurmrestd returns
(`squeue --json` and `sinfo --json` print the same shapes on 22.05). The command fallback (`sbatch --parsable`,
`squeue --json`, `scancel`, `sinfo --json`) is for sites where slurmrestd is not configured; it runs the commands
as the server's OS user.

Secrets: the token goes in a request header only; no error message, log line or repr carries it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Protocol

import httpx

API_VERSION = "v0.0.38"
NOT_MODIFIED = None  # jobs(): nothing changed since `since`


class SlurmError(Exception):
    """Slurm refused or failed a request (the message is Slurm's own, without secrets)."""


class SlurmUnavailable(SlurmError):
    """The cluster cannot serve anyone now (slurmrestd or slurmctld down, a timeout, credentials it refuses): jobs
    wait and nothing is failed; the caller retries later. Plain SlurmError is a refusal of one request."""


@dataclass(frozen=True)
class JobSpec:
    """One batch job, in the terms both clients submit."""

    name: str
    comment: str
    script: str
    environment: dict[str, str]
    work_dir: str
    output: str
    partition: str | None = None
    nodelist: str | None = None
    gres: str | None = None
    cpus: int = 1
    memory_mib: int | None = None
    time_limit_min: int | None = None
    user: str | None = None  # the account it runs as; None: the token's user (REST), the server's (commands)
    # A job over several nodes (`nodelist` names them all): one task per node, each with `cpus`, `memory_mib` and
    # `gres` (Slurm's per-node amounts); the batch script runs on the first and starts work on the others (srun).
    nodes: int = 1


class SlurmApi(Protocol):
    def submit(self, spec: JobSpec) -> int: ...

    def jobs(self, since: int | None = None) -> list[dict] | None:
        """Every job slurmctld still knows (finished ones for MinJobAge); NOT_MODIFIED when none changed since."""

    def cancel(self, slurm_id: int) -> None: ...

    def nodes(self) -> list[dict]: ...

    def close(self) -> None: ...


def _errors_of(payload: object) -> str:
    """Slurm's error list ('errors': [{'error': ..., 'description': ...}]) as one sentence."""
    if not isinstance(payload, dict):
        return ""
    parts = []
    for err in payload.get("errors") or []:
        if isinstance(err, dict):
            text = "; ".join(str(err[k]) for k in ("description", "error") if err.get(k))
            if text:
                parts.append(text)
    return " / ".join(parts)


@dataclass
class SlurmRestClient:
    """slurmrestd with rest_auth/jwt: every request carries the user name and its token (`scontrol token`)."""

    url: str
    user: str
    token: str = field(repr=False)
    timeout_s: float = 10.0
    _http: httpx.Client | None = field(default=None, init=False, repr=False)
    _checked: bool = field(default=False, init=False, repr=False)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.url.rstrip("/"), timeout=self.timeout_s,
                headers={"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": self.token})
        return self._http

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._client().request(method, path, **kwargs)
        except httpx.TransportError as exc:  # refused, reset, timed out: the engine is down, not the job wrong
            raise SlurmUnavailable(f"slurmrestd at {self.url} is unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code in (401, 403):
            raise SlurmUnavailable(f"slurmrestd at {self.url} refused the credentials of user {self.user!r} "
                             f"(HTTP {response.status_code}): check the token and its lifespan")
        if response.status_code in (502, 503, 504):
            raise SlurmUnavailable(f"slurmrestd at {self.url} answered HTTP {response.status_code}")
        return response

    def _json(self, method: str, path: str, **kwargs) -> dict:
        self.check_version()
        return self._payload(method, path, self._request(method, path, **kwargs))

    def _payload(self, method: str, path: str, response: httpx.Response, ok: tuple[int, ...] = (200,)) -> dict:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code not in ok or not isinstance(payload, dict):
            detail = _errors_of(payload) or response.text[:300].strip()
            # 22.05 answers a bare 'Unspecified error' both when slurmctld is down and when it rejects the token:
            # either way nobody can use the cluster now, so it is an outage, not a refusal of this request.
            if "Unspecified error" in detail or "unable to contact slurm controller" in detail.lower():
                raise SlurmUnavailable(f"slurmrestd at {self.url} got no answer from slurmctld ({detail}): "
                                       f"slurmctld is down or rejects the token of user {self.user!r}")
            raise SlurmError(f"slurmrestd {method} {path}: HTTP {response.status_code}: {detail}")
        return payload

    def check_version(self) -> None:
        """Read the server's OpenAPI document once: the paths this client uses must be there (versions change
        between Slurm releases, and an unknown path would fail every request with a bare 404)."""
        if self._checked:
            return
        response = self._request("GET", "/openapi/v3")
        try:
            paths = response.json().get("paths", {})
        except (ValueError, AttributeError):
            raise SlurmError(f"slurmrestd at {self.url}: /openapi/v3 is not an OpenAPI document "
                             f"(HTTP {response.status_code})") from None
        needed = [f"/slurm/{API_VERSION}/job/submit", f"/slurm/{API_VERSION}/jobs", f"/slurm/{API_VERSION}/nodes"]
        if not all(p in paths for p in needed):
            offered = sorted({p.split("/")[2] for p in paths if p.startswith("/slurm/")})
            raise SlurmError(f"slurmrestd at {self.url} offers {', '.join(offered) or 'no slurm API'}; this engine "
                             f"speaks openapi/{API_VERSION} (start slurmrestd with -s openapi/{API_VERSION})")
        self._checked = True

    def submit(self, spec: JobSpec) -> int:
        job: dict[str, object] = {
            "name": spec.name, "comment": spec.comment, "environment": spec.environment,
            "current_working_directory": spec.work_dir, "standard_output": spec.output,
            "standard_error": spec.output, "open_mode": "append", "requeue": False, "cpus_per_task": spec.cpus,
        }
        if spec.partition:
            job["partition"] = spec.partition
        if spec.nodelist:
            job["nodelist"] = spec.nodelist  # accepted by 22.05's parser (-w), though its document omits it
        if spec.nodes > 1:  # the node count follows from the node list; one task per node gets the per-node CPUs
            job["tasks"] = spec.nodes
            job["tasks_per_node"] = 1
        if spec.gres:
            job["gres"] = spec.gres
        if spec.memory_mib:
            job["memory_per_node"] = spec.memory_mib
        if spec.time_limit_min:
            job["time_limit"] = spec.time_limit_min
        # Submitted as another user: the header names them, the token stays (slurmctld allows it to SlurmUser and root).
        headers = {"X-SLURM-USER-NAME": spec.user} if spec.user else None
        payload = self._json("POST", f"/slurm/{API_VERSION}/job/submit", json={"job": job, "script": spec.script},
                             headers=headers)
        if _errors_of(payload) or not payload.get("job_id"):
            raise SlurmError(f"Slurm refused job {spec.name}: {_errors_of(payload) or 'no job id returned'}")
        return int(payload["job_id"])

    def jobs(self, since: int | None = None) -> list[dict] | None:
        # With update_time slurmctld answers 304 when no job changed since then, and the whole list otherwise.
        params = {"update_time": str(int(since))} if since is not None else None
        self.check_version()
        path = f"/slurm/{API_VERSION}/jobs"
        response = self._request("GET", path, params=params)
        if response.status_code == 304:
            return NOT_MODIFIED
        return list(self._payload("GET", path, response).get("jobs") or [])

    def cancel(self, slurm_id: int) -> None:
        self.check_version()
        response = self._request("DELETE", f"/slurm/{API_VERSION}/job/{int(slurm_id)}")
        if response.status_code != 200:
            try:
                detail = _errors_of(response.json())
            except ValueError:
                detail = response.text[:300]
            if not _already_gone(detail):
                raise SlurmError(f"Slurm could not cancel job {slurm_id}: {detail}")

    def nodes(self) -> list[dict]:
        return list(self._json("GET", f"/slurm/{API_VERSION}/nodes").get("nodes") or [])

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def _already_gone(detail: str) -> bool:
    """Cancelling a job that already ended (or that Slurm forgot) is not an error for the engine."""
    text = detail.lower()
    return any(s in text for s in ("already completing or completed", "invalid job id", "job has already finished"))


@dataclass
class SlurmCommands:
    """The same calls through Slurm's commands, for a site without slurmrestd. `slurm_conf` (SLURM_CONF) picks the
    cluster when the host's default configuration is not the one; `bin_dir` where the commands are."""

    slurm_conf: str | None = None
    bin_dir: str = "/usr/bin"
    timeout_s: float = 30.0

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # Only what the commands need: sbatch --export=ALL hands this environment to the job, so nothing of the
        # server's own environment may be in it.
        env = dict(extra or {})
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def _run(self, args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        cmd = [os.path.join(self.bin_dir, args[0]), *args[1:]]
        try:
            done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=self.timeout_s,
                                  env=self._env(env), check=False)
        except FileNotFoundError:
            raise SlurmUnavailable(f"{cmd[0]} is not installed on this host") from None
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(f"{args[0]} did not answer within {self.timeout_s:.0f}s") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()[-500:]
            if "unable to contact slurm controller" in detail.lower() or "connection refused" in detail.lower():
                raise SlurmUnavailable(f"{args[0]}: {detail}")
            raise SlurmError(f"{args[0]} failed (exit {done.returncode}): {detail}")
        return done.stdout

    def submit(self, spec: JobSpec) -> int:
        args = ["sbatch", "--parsable", f"--job-name={spec.name}", f"--comment={spec.comment}",
                f"--chdir={spec.work_dir}", f"--output={spec.output}", f"--error={spec.output}",
                "--open-mode=append", "--no-requeue", "--export=ALL", f"--cpus-per-task={spec.cpus}"]
        if spec.partition:
            args.append(f"--partition={spec.partition}")
        if spec.nodelist:
            args.append(f"--nodelist={spec.nodelist}")
        if spec.nodes > 1:
            args += [f"--nodes={spec.nodes}", f"--ntasks={spec.nodes}", "--ntasks-per-node=1"]
        if spec.gres:
            args.append(f"--gres={spec.gres}")
        if spec.memory_mib:
            args.append(f"--mem={spec.memory_mib}M")
        if spec.time_limit_min:
            args.append(f"--time={spec.time_limit_min}")
        if spec.user:
            args.append(f"--uid={spec.user}")  # root only: sbatch refuses anyone else
        out = self._run(args, stdin=spec.script, env=spec.environment).strip()
        try:
            return int(out.split(";", 1)[0])  # "ID" or "ID;CLUSTER"
        except ValueError:
            raise SlurmError(f"sbatch printed no job id: {out[:200]!r}") from None

    def jobs(self, since: int | None = None) -> list[dict] | None:
        return list(self._parse(self._run(["squeue", "--json"]), "squeue").get("jobs") or [])

    def cancel(self, slurm_id: int) -> None:
        try:
            self._run(["scancel", str(int(slurm_id))])
        except SlurmError as exc:
            if isinstance(exc, SlurmUnavailable) or not _already_gone(str(exc)):
                raise

    def nodes(self) -> list[dict]:
        return list(self._parse(self._run(["sinfo", "--json"]), "sinfo").get("nodes") or [])

    def _parse(self, text: str, command: str) -> dict:
        try:
            payload = json.loads(text)
        except ValueError:
            raise SlurmError(f"{command} printed something other than JSON") from None
        if not isinstance(payload, dict):
            return {}
        # With --json the commands exit 0 even when slurmctld is down; their errors are in the document.
        detail = _errors_of(payload)
        if detail:
            if not self._controller_up():
                raise SlurmUnavailable(f"{command}: slurmctld does not answer ({detail})")
            raise SlurmError(f"{command}: {detail}")
        return payload

    def _controller_up(self) -> bool:
        try:
            self._run(["scontrol", "ping"])
        except SlurmError:  # scontrol ping exits 1 when the controller is DOWN
            return False
        return True

    def close(self) -> None:
        pass
