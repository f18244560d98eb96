"""How console pages write amounts of resources: "1 GPU · 0.5 CPU · 2 GiB", zero amounts left out.

The API and the jobs' schemas give amounts as the text core.quantity writes ("0.25", "16Gi", "1536Mi", "0",
"unlimited"); these functions only turn that text into words for people. Registered as Jinja filters in console.py.
"""

from __future__ import annotations

import re

_MEMORY = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei)?$")
_ZERO = {"", "0", "0.0", None}


def memory_text(value: str | int | None) -> str:
    """"16Gi" -> "16 GiB", "1536Mi" -> "1536 MiB", "512" -> "512 B"; other text is kept as given."""
    text = str(value).strip() if value is not None else ""
    match = _MEMORY.match(text)
    if not match:
        return text
    suffix = match.group("suffix")
    return f"{match.group('num')} {suffix}B" if suffix else f"{match.group('num')} B"


def amounts_text(gpu: str | None = None, cpu: str | None = None, memory: str | None = None) -> str:
    """The non-zero amounts of a request or an allocation, or an em dash when there are none."""
    parts = []
    if str(gpu) not in _ZERO and gpu is not None:
        parts.append(f"{gpu} GPU" if gpu in ("1", "unlimited") or "." in str(gpu) else f"{gpu} GPUs")
    if str(cpu) not in _ZERO and cpu is not None:
        parts.append(f"{cpu} CPU")
    if str(memory) not in _ZERO and memory is not None:
        parts.append(memory_text(memory))
    return " · ".join(parts) or "—"


def amounts_of(item) -> str:
    """amounts_text for anything with gpu, cpu and memory (a job as the API shows it, a dict)."""
    get = item.get if isinstance(item, dict) else lambda name: getattr(item, name, None)
    return amounts_text(get("gpu"), get("cpu"), get("memory"))
