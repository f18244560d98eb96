"""Make ``allotment`` importable from src/ when the package is not installed (the core has no dependencies)."""

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[3] / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))
