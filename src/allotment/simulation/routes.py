"""What-if replay API. Managers and admins of the cluster (and platform admins) only: a replay reads the cluster's
configuration, draft and job history.

- POST /clusters/{c}/simulations: start a replay in the background (202); GET .../simulations/{id}: its progress and,
  once done, its result (one configuration, or two side by side with the differences).
- POST /clusters/{c}/simulation-inputs: the configurations and history as core takes them, for a client that
  replays on its own CPU (`allot simulate` does, so a long trace never has to be uploaded).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from allotment.api.deps import DB, State, cluster_scope, require
from allotment.core.permissions import Principal, cluster
from allotment.errors import FieldError, ValidationFailed, invalid
from allotment.inventory.service import find_cluster
from allotment.simulation import service
from allotment.simulation.config import to_json
from allotment.simulation.traces import Columns, TraceError, parse_period, read_csv, read_philly, read_text

router = APIRouter(tags=["simulation"])
Manager = Annotated[Principal, require(cluster("manager"), scope=cluster_scope())]
BASE = "/clusters/{cluster}"
MAX_DAYS = 366
MAX_SERIES = 500

ConfigRef = Literal["current", "draft"] | dict[str, Any]


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: str = Field(alias="from", description="date (YYYY-MM-DD) or ISO date-time")
    end: str = Field(alias="to", description="date (inclusive) or ISO date-time")

    def bounds(self) -> tuple[float, float]:
        try:
            return parse_period(f"{self.start}..{self.end}")
        except ValueError as exc:
            raise invalid("history", str(exc)) from None


class TraceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["csv", "philly"] = "csv"
    text: str = Field(description="the trace file's content (at most the API's body size)")


class InputsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: ConfigRef = "current"
    against: ConfigRef | None = None
    history: Period | None = None


class SimulationIn(InputsIn):
    days: int | None = Field(None, ge=1, le=MAX_DAYS, description="replay the last N days of the cluster's history")
    trace: TraceIn | None = None
    series: int = Field(0, ge=0, le=MAX_SERIES, description="utilisation over time in this many steps (charts)")


def _who(principal: Principal) -> str:
    return principal.actor_username or principal.username


def _trace_jobs(trace: TraceIn):
    try:
        if trace.format == "philly":
            return read_philly(read_text(trace.text), "trace")
        return read_csv(read_text(trace.text), Columns(), "trace")
    except TraceError as exc:
        raise ValidationFailed(str(exc), [FieldError("trace.text", f"line {n}: {m}") for n, m in exc.problems]) from None


@router.post(BASE + "/simulation-inputs", response_class=JSONResponse)
def inputs(cluster: str, body: InputsIn, principal: Manager, db: DB, state: State) -> JSONResponse:
    """The configuration (and the one to compare against) as core takes them, and the job history of a period."""
    found = find_cluster(db, cluster)
    settings = state.settings
    out: dict[str, Any] = {"cluster": found.name,
                           "config": to_json(service.configuration(db, found, settings, body.config)),
                           "against": None, "jobs": None, "skipped": 0}
    if body.against is not None:
        out["against"] = to_json(service.configuration(db, found, settings, body.against, "against"))
    if body.history is not None:
        jobs, skipped = service.history(db, found, *body.history.bounds())
        out["jobs"] = [[j.submit, j.duration, j.quota, j.gpu, j.cpu, j.memory, j.priority_class, j.pool, j.line,
                        j.nodes] for j in jobs]
        out["skipped"] = skipped
    # Plain JSON types throughout: rendered as they are, without FastAPI's per-value encoder walking every job.
    return JSONResponse(out)


@router.post(BASE + "/simulations", status_code=202)
def start(cluster: str, body: SimulationIn, principal: Manager, db: DB, state: State,
          response: Response) -> dict[str, Any]:
    """Replay a period of history (`history` or the last `days`) or an uploaded `trace` against `config`, and
    `against` another configuration when given. Poll the returned id for progress and the result."""
    found = find_cluster(db, cluster)
    sources = [name for name in ("history", "days", "trace") if getattr(body, name) is not None]
    if len(sources) != 1:
        raise invalid("history", "give exactly one of history (from, to), days or trace"
                      + (f" (got {', '.join(sources)})" if sources else ""))
    settings = state.settings
    cfg = service.configuration(db, found, settings, body.config)
    against = None if body.against is None else service.configuration(db, found, settings, body.against, "against")
    meta: dict[str, Any] = {"skipped": 0}
    if body.trace is not None:
        jobs = _trace_jobs(body.trace)
    else:
        bounds = body.history.bounds() if body.history is not None else (time.time() - body.days * 86400.0,
                                                                            time.time())
        jobs, meta["skipped"] = service.history(db, found, *bounds)
    run = service.runs_of(state.extras).start(found, _who(principal), cfg, against, jobs, body.series, meta)
    response.headers["Location"] = f"/api/v1/clusters/{found.name}/simulations/{run.id}"
    return run.view()


@router.get(BASE + "/simulations/{run_id}")
def get(cluster: str, run_id: int, principal: Manager, db: DB, state: State) -> dict[str, Any]:
    """A replay's status (running, done, failed), progress (0..1) and, once done, its result."""
    found = find_cluster(db, cluster)
    return service.runs_of(state.extras).get(found.id, run_id).view()
