"""A job's shape beyond its amounts: how many nodes it spans, the GPU models it accepts, and the cluster's minimum GPU
share. Checked at submission, each refusal naming its field.

- `nodes` (default 1): with 1, the job's GPUs, CPU and memory are placed on one node. N > 1 is a gang placed on N
  distinct nodes at once or not at all; `gpus_per_node` (whole GPUs), `cpu` and `memory` are then per node, and the
  job's stored amounts are the totals (per node x N), which caps, quotas and metering count.
- `gpus_per_node` alone (without `nodes`) is the GPUs of a one-node job, the same as `gpu`.
- `gpu_models` (["A100", "H100"], or the text "A100,H100"): the pools of those GPU models (Pool.device_model, the
  model a pool's devices share) are an unordered set: the scheduler takes the best fit across them instead of trying
  pools in order. Not with a pinned pool or a profile, which name the pools themselves.
- A share of one GPU must be a multiple of the cluster's minimum share (engine setting `min_gpu_share`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.core import limits
from allotment.core.quantity import format_raw
from allotment.inventory.engine_settings import gpu_share_step
from allotment.inventory.models import Cluster, Pool
from allotment.workloads.requests import GPU_STEP, WHOLE_GPU, parse_request

MAX_NODES = 4096
MAX_GPU_MODELS = 32


class ClusterFacts:
    """Per-call cache of what shape checks read about a cluster: its minimum GPU share and its pools' models."""

    def __init__(self, session: Session):
        self.session = session
        self._steps: dict[int, tuple[str, int]] = {}
        self._models: dict[int, list[tuple[str, str]]] = {}

    def gpu_step(self, cluster_id: int) -> tuple[str, int]:
        """(the cluster's name, its minimum GPU share in milli-GPU)."""
        if cluster_id not in self._steps:
            row = self.session.execute(select(Cluster.name, Cluster.engine_settings)
                                       .where(Cluster.id == cluster_id)).first()
            self._steps[cluster_id] = (row.name, gpu_share_step(row.engine_settings)) if row else ("", GPU_STEP)
        return self._steps[cluster_id]

    def model_pools(self, cluster_id: int) -> list[tuple[str, str]]:
        """(pool name, GPU model) of each pool of one model, in pool order."""
        if cluster_id not in self._models:
            self._models[cluster_id] = [(name, model) for name, model in self.session.execute(
                select(Pool.name, Pool.device_model).where(Pool.cluster_id == cluster_id,
                                                           Pool.device_model.is_not(None)).order_by(Pool.id)).all()]
        return self._models[cluster_id]


def split_models(value: Any) -> tuple[list[str] | None, str | None]:
    """The GPU models asked for (None: none), from a list or comma-separated text, without repeats."""
    if value is None or value == "" or value == []:
        return None, None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        return None, "must be a list of GPU models, or GPU models separated by commas (A100,H100)"
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item or len(item) > limits.MAX_NAME:
            return None, f"each GPU model is 1 to {limits.MAX_NAME} characters"
        if item.lower() not in (o.lower() for o in out):
            out.append(item)
    if len(out) > MAX_GPU_MODELS:
        return None, f"at most {MAX_GPU_MODELS} GPU models"
    return out or None, None


def read_shape(facts: ClusterFacts, cluster_id: int | None, req: Any, amounts: dict[str, int],
               has_profile: bool, pinned_pool: bool, usable: frozenset[str] | None,
               err: Callable[[str, str], None]) -> tuple[int, list[str] | None]:
    """(nodes, GPU models) of a request whose amounts were read into `amounts` (changed in place to the job's
    totals); every problem goes to `err(field, message)`."""
    if req.nodes is None and req.gpus_per_node in (None, "") and req.gpu_models in (None, "", []) \
            and not has_profile:  # the usual job: one node, no models (what the checks below come to for it)
        _check_share(facts, cluster_id, amounts.get("gpu", 0), "gpu", err)
        return 1, None
    nodes = req.nodes if req.nodes is not None else 1
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= MAX_NODES:
        err("nodes", f"must be a whole number from 1 to {MAX_NODES}")
        nodes = 1
    per_node_gpu = None
    if req.gpus_per_node not in (None, ""):
        raw, problem = parse_request("gpus_per_node", req.gpus_per_node, "gpu")
        if problem is None and raw % WHOLE_GPU:
            problem = (f"whole GPUs on each node (got {format_raw(raw, 'gpu')}); a share of one GPU is asked "
                       f"with gpu")
        if problem:
            err("gpus_per_node", problem)
        elif req.gpu not in (None, "", 0):
            err("gpu", "give either gpu or gpus_per_node, not both")
        per_node_gpu = raw
    elif nodes > 1 and req.gpu not in (None, "", 0):
        err("gpu", "with nodes, give gpus_per_node: the GPUs of each node")
    models, problem = split_models(req.gpu_models)
    if problem:
        err("gpu_models", problem)
    if has_profile:
        for name, given in (("nodes", req.nodes not in (None, 1)), ("gpus_per_node", per_node_gpu is not None),
                            ("gpu_models", models is not None)):
            if given:
                err(name, "a profile sets the job's shape and pools: give resources instead of a profile")
        _check_share(facts, cluster_id, amounts.get("gpu", 0), "profile", err)
        return 1, None
    if per_node_gpu is not None:
        amounts["gpu"] = per_node_gpu
    if nodes > 1:
        for resource in amounts:
            amounts[resource] *= nodes
    gpu = amounts.get("gpu", 0)
    _check_share(facts, cluster_id, gpu, "gpu", err)
    if models is None or cluster_id is None:
        return nodes, models
    if pinned_pool:
        err("gpu_models", "give either a pool or GPU models, not both")
    elif not gpu and not req.gpu and not req.gpus_per_node:  # (a GPU amount that could not be read: said there)
        err("gpu_models", "choose pools by GPU model only for a job that asks for GPUs")
    else:
        known = facts.model_pools(cluster_id)
        by_model = {model.lower(): model for _, model in known}
        unknown = [m for m in models if m.lower() not in by_model]
        if unknown:
            offered = ", ".join(sorted(set(by_model.values()))) or "none: no pool holds GPUs of a single model"
            err("gpu_models", f"no pool of GPU model {', '.join(unknown)} in cluster {facts.gpu_step(cluster_id)[0]} "
                              f"(models of "
                              f"its pools: {offered})")
            return nodes, models
        models = [by_model[m.lower()] for m in models]
        pools = [name for name, model in known if model in models]
        if usable is not None and not set(pools) & usable:
            err("gpu_models", f"the pools of {', '.join(models)} ({', '.join(pools)}) are not among those the quota "
                              f"may use ({', '.join(sorted(usable)) or 'none'})")
    return nodes, models


def _check_share(facts: ClusterFacts, cluster_id: int | None, gpu: int, field: str,
                 err: Callable[[str, str], None]) -> None:
    """A share of one GPU is a multiple of the cluster's minimum share (0.01 GPU is checked with the amount)."""
    if cluster_id is None or not 0 < gpu < WHOLE_GPU:
        return
    name, step = facts.gpu_step(cluster_id)
    if step != GPU_STEP and gpu % step:
        if step >= WHOLE_GPU:
            err(field, f"cluster {name} runs whole GPUs only (its min_gpu_share is 1; got {format_raw(gpu, 'gpu')})")
        else:
            err(field, f"cluster {name} shares GPUs in steps of {format_raw(step, 'gpu')} (its min_gpu_share; got "
                       f"{format_raw(gpu, 'gpu')})")


def model_pool_names(models: list[str], pools: list[tuple[str, str | None]]) -> tuple[str, ...]:
    """The pools (in pool order) whose GPU model is one of `models` (loader: a job's unordered set of pools)."""
    wanted = {m.lower() for m in models}
    return tuple(name for name, model in pools if model is not None and model.lower() in wanted)
