"""A user's remaining allowance as the console shows it (Backend.AI's resource indicator): per cap what is in use,
the limit and what is left, and the numbers the submit form's sliders stop at. The figures come from the policies
service (the same as GET /api/v1/users/{user}/allowance and `allot policies allowance`); this only shapes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allotment.core.quantity import parse_quantity
from allotment.web.formatting import memory_text

GIB = 1024**3
# The caps held at once that a job's shape draws on, with how the indicator names them and the resource they count.
SHOWN = (("gpu", "GPUs", None), ("fgpu", "GPU (fractional)", "gpu"), ("cpu", "CPU cores", "cpu"),
         ("memory", "Memory", "memory"), ("concurrent_jobs", "Jobs at once", None))


@dataclass(frozen=True)
class CapLine:
    field: str
    label: str
    in_use: str
    limit: str
    remaining: str
    percent: int  # in use of the limit, 0 when unlimited


def _number(value: Any, resource: str | None) -> float | None:
    """The cap in the form's units (GPUs, cores, GiB); None when unlimited."""
    if value is None or value == "unlimited":
        return None
    if resource is None:
        return float(value)
    raw = parse_quantity(str(value), resource).raw
    return raw / GIB if resource == "memory" else raw / 1000


def _text(value: Any, resource: str | None) -> str:
    if value is None:
        return "—"
    return memory_text(value) if resource == "memory" and value != "unlimited" else str(value)


def indicator(allowance: dict[str, Any]) -> list[CapLine]:
    """One line per cap that limits what a job may hold, unlimited ones included (they say so)."""
    lines = []
    for field, label, resource in SHOWN:
        cap = allowance["caps"].get(field)
        if cap is None:
            continue
        limit, used = _number(cap["limit"], resource), _number(cap.get("in_use", 0), resource) or 0.0
        percent = 0 if not limit else min(100, round(100 * used / limit))
        lines.append(CapLine(field, label, _text(cap.get("in_use"), resource), _text(cap["limit"], resource),
                             _text(cap["remaining"], resource), percent))
    return lines


def slider_max(allowance: dict[str, Any]) -> dict[str, float | None]:
    """Where the form's sliders stop: what remains of each cap (GPUs: the lower of whole devices and the fractional
    cap), or None where the policy sets no cap."""
    caps = allowance["caps"]
    gpu_caps = [n for n in (_number(caps["gpu"]["remaining"], None), _number(caps["fgpu"]["remaining"], "gpu"))
                if n is not None]
    return {"gpu": min(gpu_caps) if gpu_caps else None,
            "cpu": _number(caps["cpu"]["remaining"], "cpu"),
            "memory": _number(caps["memory"]["remaining"], "memory")}
