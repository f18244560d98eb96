"""Imports every domain's models so that Base.metadata (and Alembic) sees all tables."""

from allotment.audit import models as audit_models  # noqa: F401
from allotment.db import Base
from allotment.identity import models as identity_models  # noqa: F401
from allotment.inventory import models as inventory_models  # noqa: F401
from allotment.quotas import models as quota_models  # noqa: F401
from allotment.workloads import models as workload_models  # noqa: F401

metadata = Base.metadata
