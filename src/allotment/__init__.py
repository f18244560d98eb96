"""allotment: a self-hosted control plane for shared GPU clusters."""

__version__ = "0.1.0"

# The scheduler core runs compiled when a fresh build of it is present (compiled_core.py). Chosen here, before any of
# its modules is imported, so that the whole process runs one build of it.
from allotment import compiled_core as _compiled_core

_compiled_core.choose()
