"""Regenerate the initial schema migration from the models.

Until the first release the schema has one migration, regenerated whenever models change; after it, add
incremental revisions with `alembic revision --autogenerate` instead.
"""

import tempfile
from pathlib import Path

from alembic import command

from allotment.migrate import MIGRATIONS_DIR, alembic_config

target = MIGRATIONS_DIR / "versions" / "0001_initial.py"
target.unlink(missing_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
generated = next((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
generated.rename(target)
print(f"wrote {target.relative_to(MIGRATIONS_DIR.parent.parent.parent)}")
