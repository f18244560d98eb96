"""allotment: a self-hosted control plane for shared GPU clusters."""

__version__ = "0.1.0"
