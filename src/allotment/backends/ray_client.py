"""Talking to a Ray cluster: its Jobs API through Ray's own `JobSubmissionClient`, its nodes through Ray's state API.

Ray is an optional dependency (`pip install 'allotment[ray]'`): it is imported on first use, so a server without it
runs, and a Ray cluster then reports its engine unavailable with that sentence.

Both answer in plain terms (`RayJob`, `RayNode`) and fail in two ways only: `RayUnavailable` when the cluster cannot
serve anyone now (the head down or hanging, credentials refused, Ray not installed) and `RayError` for a refusal of
one request. Every request has a timeout: Ray's clients wait for ever by default, which would hold up a scheduler
cycle on a hanging head.

Secrets: the address may carry credentials (`http://user:password@head:8265`) and `headers` a token. No error
message, log line or repr carries either: messages name the address without its user part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MISSING = "the Ray engine needs the 'ray' package with its default extra: pip install 'allotment[ray]'"
_STATUS = re.compile(r"status code (\d{3})")


class RayError(Exception):
    """Ray refused or failed one request (the message is Ray's own, without secrets)."""


class RayUnavailable(RayError):
    """The cluster cannot serve anyone now: jobs wait, nothing is failed, the caller retries later."""


class RayNotFound(RayError):
    """Ray has no job of that submission id."""


class RayJobExists(RayError):
    """A job of that submission id was submitted before (the run exists: adopt it, never submit twice)."""


@dataclass(frozen=True)
class RayJob:
    submission_id: str
    status: str  # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED
    message: str | None = None
    exit_code: int | None = None  # the entrypoint's exit code (Ray's driver_exit_code), when it ended on its own
    error_type: str | None = None
    start_time: float | None = None  # epoch seconds
    end_time: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RayNode:
    node_id: str
    name: str
    ip: str
    alive: bool
    resources: dict[str, float]


def public_address(address: str) -> str:
    """The address without its user part (credentials), for messages."""
    parts = urlsplit(address)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _seconds(ms: Any) -> float | None:
    return float(ms) / 1000 if isinstance(ms, (int, float)) and ms > 0 else None


class RayJobsApi:
    """The handful of calls the engine needs, with timeouts and one error vocabulary."""

    def __init__(self, address: str, headers: dict[str, str] | None = None, timeout_s: float = 10.0):
        self._address = address.rstrip("/")
        self._headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.where = public_address(self._address)
        self._jobs_client = None  # made on first use: making it asks the head for its version

    def __repr__(self) -> str:
        return f"RayJobsApi({self.where!r})"

    # -- plumbing --------------------------------------------------------------------------------------------------
    def _sdk(self):
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError as exc:
            raise RayUnavailable(MISSING) from exc
        timeout_s = self.timeout_s

        class TimedClient(JobSubmissionClient):
            # Ray's client passes no timeout to `requests`: every request here gets one.
            def _do_request(self, method, endpoint, **kwargs):
                kwargs.setdefault("timeout", timeout_s)
                return super()._do_request(method, endpoint, **kwargs)

        return TimedClient

    def _client(self):
        if self._jobs_client is None:
            client_class = self._sdk()
            self._jobs_client = self._call(lambda: client_class(self._address, headers=self._headers or None))
        return self._jobs_client

    def _call(self, request):
        """Run one request of Ray's clients, translating what they raise into this module's errors."""
        try:
            return request()
        except RayError:
            raise
        except ImportError as exc:
            raise RayUnavailable(MISSING) from exc
        except Exception as exc:  # noqa: BLE001 - Ray raises RuntimeError, ConnectionError and requests' own
            raise self._translate(exc) from None

    def _translate(self, exc: Exception) -> RayError:
        name = type(exc).__name__
        text = str(exc)
        if name in {"AuthenticationError"}:
            return RayUnavailable(f"the Ray head at {self.where} refuses our credentials")
        if name in {"ServerUnavailable", "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout",
                    "ChunkedEncodingError"} or isinstance(exc, (ConnectionError, TimeoutError)):
            return RayUnavailable(f"the Ray head at {self.where} does not answer ({name})")
        status = _STATUS.search(text)
        code = int(status.group(1)) if status else None
        if "already exists" in text:
            return RayJobExists(_first_line(text))
        if code == 404 or "does not exist" in text:
            return RayNotFound(_first_line(text))
        if code in (401, 403):
            return RayUnavailable(f"the Ray head at {self.where} refuses our credentials (HTTP {code})")
        if code is not None and code >= 502:
            return RayUnavailable(f"the Ray head at {self.where} cannot serve now (HTTP {code})")
        if name == "RayStateApiException":
            return RayUnavailable(f"Ray's state API at {self.where} fails: {_first_line(text)[:300]}")
        return RayError(f"Ray: {_last_error_line(text)[:500]}")

    # -- jobs ------------------------------------------------------------------------------------------------------
    def submit(self, submission_id: str, entrypoint: str, *, num_cpus: float | None = None,
               num_gpus: float | None = None, memory: int | None = None, resources: dict[str, float] | None = None,
               env_vars: dict[str, str] | None = None, metadata: dict[str, str] | None = None) -> str:
        client = self._client()
        return self._call(lambda: client.submit_job(
            entrypoint=entrypoint, submission_id=submission_id, entrypoint_num_cpus=num_cpus,
            entrypoint_num_gpus=num_gpus, entrypoint_memory=memory, entrypoint_resources=resources or None,
            runtime_env={"env_vars": dict(env_vars or {})}, metadata=dict(metadata or {})))

    def job(self, submission_id: str) -> RayJob | None:
        client = self._client()
        try:
            return _job(self._call(lambda: client.get_job_info(submission_id)))
        except RayNotFound:
            return None

    def jobs(self) -> list[RayJob]:
        """Every submitted job Ray keeps (all of them, finished ones included, as long as the cluster lives)."""
        client = self._client()
        return [_job(j) for j in self._call(client.list_jobs) if getattr(j, "submission_id", None)]

    def stop(self, submission_id: str) -> bool:
        """Stop a job; False when it had ended already; RayNotFound when Ray does not know it."""
        client = self._client()
        return bool(self._call(lambda: client.stop_job(submission_id)))

    def logs(self, submission_id: str) -> str:
        client = self._client()
        return self._call(lambda: client.get_job_logs(submission_id))

    # -- nodes -----------------------------------------------------------------------------------------------------
    def nodes(self) -> list[RayNode]:
        try:
            from ray.util.state.api import StateApiClient
            from ray.util.state.common import ListApiOptions, StateResource
        except ImportError as exc:
            raise RayUnavailable(MISSING) from exc
        timeout = max(1, int(self.timeout_s))

        def listing():
            client = StateApiClient(self._address, headers=self._headers or None)
            return client.list(StateResource.NODES, options=ListApiOptions(detail=True, timeout=timeout),
                               raise_on_missing_output=False)

        nodes = []
        for node in self._call(listing):
            get = node.get if isinstance(node, dict) else lambda key, n=node: getattr(n, key, None)
            nodes.append(RayNode(node_id=str(get("node_id") or ""), name=str(get("node_name") or get("node_ip") or ""),
                                 ip=str(get("node_ip") or ""), alive=str(get("state") or "").upper() == "ALIVE",
                                 resources={str(k): float(v) for k, v in (get("resources_total") or {}).items()}))
        return nodes

    def close(self) -> None:
        self._jobs_client = None


def _job(details: Any) -> RayJob:
    status = getattr(details, "status", "")
    status = str(getattr(status, "value", status) or "").upper()
    metadata = getattr(details, "metadata", None) or {}
    code = getattr(details, "driver_exit_code", None)
    return RayJob(submission_id=str(details.submission_id), status=status, message=getattr(details, "message", None),
                  exit_code=int(code) if isinstance(code, int) else None,
                  error_type=_plain(getattr(details, "error_type", None)),
                  start_time=_seconds(getattr(details, "start_time", None)),
                  end_time=_seconds(getattr(details, "end_time", None)),
                  metadata={str(k): str(v) for k, v in metadata.items()})


def _plain(value: Any) -> str | None:
    value = getattr(value, "value", value)
    return str(value) if value else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _last_error_line(text: str) -> str:
    """Ray's HTTP errors carry the server's traceback: its last `SomeError: ...` line says what went wrong."""
    lines = [line.strip(" .") for line in text.strip().splitlines() if line.strip(" .")]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line):
            return line
    return lines[0] if lines else text
