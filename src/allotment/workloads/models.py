"""Database models of the workloads domain."""

from allotment.db import Base  # noqa: F401
