"""Database models of the quotas domain."""

from allotment.db import Base  # noqa: F401
