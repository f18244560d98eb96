"""Imports every domain's models so that Base.metadata (and Alembic) sees all tables.

Each domain import is there for its side effect, registering the domain's tables on Base.metadata, hence the noqa.
"""

from allotment.access import models as access_models  # noqa: F401 - registers tables
from allotment.accounting import models as accounting_models  # noqa: F401 - registers tables
from allotment.audit import models as audit_models  # noqa: F401 - registers tables
from allotment.db import Base
from allotment.federation import models as federation_models  # noqa: F401 - registers tables
from allotment.federation.scim import models as scim_models  # noqa: F401 - registers tables
from allotment.identity import models as identity_models  # noqa: F401 - registers tables
from allotment.inventory import models as inventory_models  # noqa: F401 - registers tables
from allotment.policies import models as policy_models  # noqa: F401 - registers tables
from allotment.projects import models as project_models  # noqa: F401 - registers tables
from allotment.quotas import models as quota_models  # noqa: F401 - registers tables
from allotment.storage import models as storage_models  # noqa: F401 - registers tables
from allotment.storage import targets_models as storage_target_models  # noqa: F401 - registers tables
from allotment.vaults import models as vault_models  # noqa: F401 - registers tables
from allotment.workloads import models as workload_models  # noqa: F401 - registers tables
from allotment.workspaces import models as workspace_models  # noqa: F401 - registers tables

metadata = Base.metadata
