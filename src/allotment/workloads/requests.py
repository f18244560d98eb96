"""Reading what a job asks for: quantities, the GPU shape rule and durations ("2h", "90m", "1h30m", 3600).

GPU shares are accounted in milli-GPU. The finest share a job may ask for is 0.01 GPU (GPU_STEP); a cluster may set a
coarser minimum share (its engine setting `min_gpu_share`, inventory/engine_settings.py), which submission checks
too."""

from __future__ import annotations

import re

from allotment.core.names import is_digits
from allotment.core.quantity import format_raw, parse_quantity

WHOLE_GPU = 1000
GPU_STEP = 10  # fractional GPUs go in steps of 0.01 at the finest
MAX_TIME_LIMIT_S = 366 * 86400
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def gpu_problem(raw: int, step: int = GPU_STEP) -> str | None:
    """Why a GPU amount cannot be placed, or None: a share of one device in steps of `step` milli-GPU (0.01 GPU
    unless the cluster's minimum share is coarser), whole GPUs above one."""
    if raw % step:
        if step >= WHOLE_GPU:
            return f"this cluster runs whole GPUs only (got {format_raw(raw, 'gpu')})"
        return f"fractional GPUs go in steps of {format_raw(step, 'gpu')} (got {format_raw(raw, 'gpu')})"
    if raw > WHOLE_GPU and raw % WHOLE_GPU:
        return f"above one GPU ask for whole GPUs (got {format_raw(raw, 'gpu')}); only a share of one device " \
               f"may be fractional"
    return None


def parse_request(field_name: str, value, resource: str) -> tuple[int, str | None]:
    """(raw amount, problem). Missing means zero; unlimited and negative amounts are refused."""
    if value is None or value == "":
        return 0, None
    try:
        quantity = parse_quantity(value, resource)
    except ValueError as exc:
        return 0, str(exc)
    if quantity.is_unlimited:
        return 0, f"a job cannot request unlimited {resource}"
    if resource == "gpu":
        problem = gpu_problem(quantity.raw)
        if problem:
            return 0, problem
    return quantity.raw, None


def parse_duration(value) -> tuple[int | None, str | None]:
    """Seconds from 3600, "3600", "90s", "30m", "2h", "1d" or "1h30m"; (None, None) when absent."""
    if value is None or value == "":
        return None, None
    if isinstance(value, bool):
        return None, "must be a duration such as 3600, 90m or 2h"
    if isinstance(value, int | float):
        seconds = value
    else:
        text = str(value).strip().lower()
        if is_digits(text) and len(text) <= 12:
            seconds = int(text)
        else:
            parts = _DURATION.findall(text)
            if not parts or _DURATION.sub("", text).strip():
                return None, f"cannot read {value!r} as a duration (examples: 3600, 90m, 2h, 1h30m, 1d)"
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        return None, "must be longer than zero"
    if seconds > MAX_TIME_LIMIT_S:
        return None, f"must be at most {MAX_TIME_LIMIT_S // 86400} days"
    return int(seconds), None
