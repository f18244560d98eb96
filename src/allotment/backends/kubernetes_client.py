"""The seam a Kubernetes engine will be built on (docs/kubernetes-engine.md): the API calls it needs, nothing more.

No engine implements or uses this yet: a Kubernetes API server cannot run where allotment is tested, and an engine
tested only against a mock would test our own assumptions. The engine, and the client implementing this Protocol
(httpx or the official `kubernetes` package), are written together once a real API server is available to test with.
Objects are the API's own JSON (dicts), so the engine maps them and the client stays a transport.
"""

from __future__ import annotations

from typing import Any, Protocol


class KubernetesClient(Protocol):
    namespace: str

    def list_nodes(self) -> list[dict[str, Any]]:
        """GET /api/v1/nodes: allocatable resources, labels (GPU model), conditions, spec.unschedulable, taints."""

    def create_pod(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """POST a pod in the namespace. Raises an error carrying 409 when a pod of that name exists (the engine then
        adopts it: launches are idempotent per run)."""

    def get_pod(self, name: str) -> dict[str, Any] | None:
        """The pod, or None when it does not exist."""

    def list_pods(self, label_selector: str, resource_version: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """Pods matching the selector, and the list's resourceVersion for the next call."""

    def delete_pod(self, name: str, grace_period_s: int) -> None:
        """DELETE with gracePeriodSeconds (SIGTERM, then SIGKILL after it); a missing pod is not an error."""

    def pod_log(self, name: str, since_bytes: int = 0) -> bytes:
        """The container's output from `since_bytes` on."""
