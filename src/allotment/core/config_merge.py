"""Configuration vaults (ClearML): machine keys that no vault may set, and the effective configuration, the merge of
a principal's enabled vaults in order, with the vault each key came from.

A configuration is handled as its leaves under dotted paths ({"agent": {"git_user": "x"}} is "agent.git_user"), so a
key written nested or dotted (HOCON's `agent.git_user = x`, or a dotted key in JSON or YAML) is the same key. A later
vault overrides an earlier one leaf by leaf; a leaf that replaces a section (or a section that replaces a leaf)
removes what was under the old one, as HOCON does when a value replaces an object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Machine- or agent-specific: set where the job runs, never by a vault (ClearML's list).
MACHINE_KEYS: tuple[str, ...] = (
    "agent.cuda_version", "agent.cudnn_version", "agent.default_python", "agent.worker_id", "agent.worker_name",
    "agent.debug",
)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The leaves of a nested mapping under dotted paths (an empty section is a leaf: {})."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = dict(value) if isinstance(value, Mapping) else value
    return out


def machine_keys_in(tree: Mapping[str, Any]) -> list[str]:
    """The machine keys a configuration sets (itself or anything under it), in MACHINE_KEYS' order."""
    paths = flatten(tree)
    return [k for k in MACHINE_KEYS if any(p == k or p.startswith(k + ".") for p in paths)]


@dataclass(frozen=True)
class Layer:
    """One enabled vault as merged: its name (the source shown for its keys) and its content."""

    name: str
    content: Mapping[str, Any]


@dataclass
class Effective:
    """The merged leaves with, for each, the name of the vault that set it, and the configuration as a tree."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def tree(self) -> dict[str, Any]:
        return unflatten(self.values)


def merge(layers: Iterable[Layer]) -> Effective:
    """Later layers override earlier ones, leaf by leaf (see the module docstring)."""
    result = Effective()
    for layer in layers:
        for path, value in flatten(layer.content).items():
            for existing in [p for p in result.values if p.startswith(path + ".") or path.startswith(p + ".")]:
                del result.values[existing]
                del result.sources[existing]
            result.values[path] = value
            result.sources[path] = layer.name
    return result


def unflatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """The nested configuration of dotted leaves (as `merge` leaves them: no leaf lies under another)."""
    tree: dict[str, Any] = {}
    for path in sorted(values):
        node = tree
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = values[path]
    return tree
