"""Imports every domain's models so that Base.metadata (and Alembic) sees all tables."""

from allotment.accounting import models as accounting_models
from allotment.audit import models as audit_models
from allotment.db import Base
from allotment.federation import models as federation_models
from allotment.federation.scim import models as scim_models
from allotment.identity import models as identity_models
from allotment.inventory import models as inventory_models
from allotment.policies import models as policy_models
from allotment.quotas import models as quota_models
from allotment.workloads import models as workload_models
from allotment.workspaces import models as workspace_models

metadata = Base.metadata
