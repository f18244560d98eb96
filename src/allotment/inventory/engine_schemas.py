"""A new cluster as the OpenAPI states it: one schema per backend, each with its own engine settings, so that a
client sees which settings go with which backend, which are required and which exclude each other.

- local: no settings (`engine` empty or null); `backend` may be left out.
- simulated: `nodes_file` and `min_gpu_share`.
- slurm: `log_dir` always, and either slurmrestd (`rest_url` with `rest_user` and `token`; not `slurm_conf` and
  `bin_dir`, which only the commands read) or Slurm's commands (no `rest_url`, `rest_user` or `token`). With
  `rest_user` root and an `accounts` map, the map must name '*' (else unmapped users' jobs would run as root).
- ray: `address` always.
- simulated, slurm and ray: `min_gpu_share` (the smallest share of a GPU a job may ask for) optionally.

These models only describe: requests are read by schemas.ClusterCreate and checked by engine_settings.merge, which
reports every problem of a request at once with messages of its own. They are built from engine_settings.EngineIn's
fields, so a setting's rule (pattern, length) and description are written once.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from allotment.api.fields import Description, Name
from allotment.inventory.engine_settings import COMMANDS_ONLY, REST_ONLY, STRIPPED_SPACE, EngineIn

SLURM_SHARED = ("state_dir", "work_dir", "partitions", "default_partition", "name_prefix", "accounts",
                "min_gpu_share")
# With rest_user root, an accounts map that does not name '*' is refused (engine_settings._check_slurm).
ROOT_NEEDS_A_DEFAULT_ACCOUNT = {"not": {
    "required": ["rest_user", "accounts"],
    "properties": {"rest_user": {"pattern": f"^{STRIPPED_SPACE}*root{STRIPPED_SPACE}*$"},
                   "accounts": {"type": "object", "minProperties": 1, "not": {"required": ["*"]}}}}}


def _setting(name: str) -> Any:
    """EngineIn's type for the setting, without its None."""
    return next(arg for arg in typing.get_args(EngineIn.model_fields[name].annotation) if arg is not type(None))


def _engine(model: str, doc: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
            left_out: tuple[str, ...] = (), extra: dict | None = None) -> type[BaseModel]:
    """Settings that must be given, may be given (null: not set), and may only be left out or null."""
    described = {name: EngineIn.model_fields[name].description for name in (*required, *optional, *left_out)}
    fields: dict[str, Any] = {name: (_setting(name), Field(description=described[name])) for name in required}
    fields |= {name: (_setting(name) | None, Field(None, description=described[name])) for name in optional}
    fields |= {name: (None, Field(None, description=f"{described[name]}; not with this mode: leave it out"))
               for name in left_out}
    config = ConfigDict(extra="forbid", json_schema_extra=extra)
    return create_model(model, __config__=config, __doc__=doc, **fields)


LocalEngine = _engine("LocalEngine", "The local engine takes no settings: it runs under the server's own.")
SimulatedEngine = _engine("SimulatedEngine", "Virtual nodes for trying allotment out.", optional=("nodes_file", "min_gpu_share"))
SlurmRestEngine = _engine("SlurmRestEngine", "Slurm through slurmrestd.",
                          required=("rest_url", *REST_ONLY, "log_dir"), optional=SLURM_SHARED, left_out=COMMANDS_ONLY,
                          extra=ROOT_NEEDS_A_DEFAULT_ACCOUNT)
SlurmCommandsEngine = _engine("SlurmCommandsEngine", "Slurm through its commands (sbatch, squeue, scancel).",
                              required=("log_dir",), optional=(*COMMANDS_ONLY, *SLURM_SHARED),
                              left_out=("rest_url", *REST_ONLY))
RayEngine = _engine("RayEngine", "A Ray cluster through its Jobs API.", required=("address",),
                    optional=("resources", "name_prefix", "min_gpu_share"))


class _NewCluster(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name("cluster")
    description: Description | None = None


class LocalCluster(_NewCluster):
    backend: Literal["local"] = "local"
    engine: LocalEngine | None = None  # type: ignore[valid-type]


class SimulatedCluster(_NewCluster):
    backend: Literal["simulated"]
    engine: SimulatedEngine | None = None  # type: ignore[valid-type]


class SlurmCluster(_NewCluster):
    backend: Literal["slurm"]
    engine: SlurmRestEngine | SlurmCommandsEngine  # type: ignore[valid-type]


class RayCluster(_NewCluster):
    backend: Literal["ray"]
    engine: RayEngine  # type: ignore[valid-type]


NEW_CLUSTER_SCHEMAS = (LocalCluster, SimulatedCluster, SlurmCluster, RayCluster)
