"""Run the scheduler core compiled (mypyc) when a build made from exactly its current sources is present.

The core's cycle modules (scripts/build_core_ext.py lists them) compile with mypyc into C extensions; the cycle then
takes about a third fewer instructions with the same decisions (benchmarks/README.md). The .py files stay the only
source and the reference: the build is made from them, checked against them (a test replays randomised scenarios
through both and compares every decision) and used only while it matches them.

Where: `make install` (and so `make run` and `make test`) builds into build/core-ext at the repository's root, never
beside the sources: Python imports an extension before a .py of the same name, so a .so left beside an edited .py
would silently run the old code. The folder holds a manifest with the sha256 of every .py of allotment/core at build
time and the interpreter ABI it was built for. At import (allotment/__init__.py, before any core module loads) the
folder goes in front of allotment.core's ``__path__`` only when the manifest matches the sources as they are now;
otherwise the sources run, with a warning naming why (an edited core file: `make install` builds it again).

ALLOTMENT_CORE_EXT chooses: unset, the repository's build/core-ext when it exists (silently the sources when it does
not: an install without a C compiler, or from a wheel); ``off`` (or 0, false, no, empty), always the sources; a path,
the build in that folder. ``STATUS`` says which runs, in words (the server logs it at start).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
import warnings
from pathlib import Path

MANIFEST = "manifest.json"
ENV = "ALLOTMENT_CORE_EXT"
OFF = ("off", "0", "false", "no", "")
DEFAULT_BUILD = Path(__file__).resolve().parents[2] / "build" / "core-ext"  # src/allotment/ -> the repository

STATUS = "interpreted (the Python sources)"
ACTIVE = False


def source_digests(package_dir: Path) -> dict[str, str]:
    """sha256 of every .py of the package, by file name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(package_dir.glob("*.py"))}


def stale_reason(ext_root: Path, package_dir: Path) -> str | None:
    """Why the build in ``ext_root`` may not be used for the sources in ``package_dir`` (None: it may)."""
    try:
        manifest = json.loads((ext_root / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        return f"no readable {MANIFEST} ({e})"
    if manifest.get("soabi") != sysconfig.get_config_var("SOABI"):
        return f"built for {manifest.get('soabi')}, this interpreter is {sysconfig.get_config_var('SOABI')}"
    built, now = manifest.get("sources", {}), source_digests(package_dir)
    changed = sorted(name for name in built.keys() | now.keys() if built.get(name) != now.get(name))
    if changed:
        return f"sources changed since the build: {', '.join(changed)}; `make install` builds it again"
    missing = [name for name in manifest.get("extensions", []) if not (ext_root / name).is_file()]
    if missing or not manifest.get("extensions"):
        return f"extensions missing: {', '.join(missing) or 'none listed'}"
    return None


def activate(package_path: list[str], ext_root: str | Path) -> bool:
    """Put the compiled modules in front of ``package_path`` (allotment.core's ``__path__``) if they are fresh."""
    global STATUS, ACTIVE
    package_dir = Path(package_path[-1])
    root = Path(ext_root).resolve()
    reason = stale_reason(root, package_dir)
    if reason is not None:
        STATUS = f"interpreted (the build in {root} is not used: {reason})"
        warnings.warn(f"scheduler core: the build in {root} is not used, the Python sources run instead ({reason})",
                      stacklevel=2)
        return False
    package_path.insert(0, str(root / "allotment" / "core"))
    if str(root) not in sys.path:  # the shared library of the compiled group is a top-level module
        sys.path.append(str(root))
    STATUS = f"compiled (mypyc build in {root})"
    ACTIVE = True
    return True


def choose() -> bool:
    """Apply ALLOTMENT_CORE_EXT (see the module's text) to allotment.core; True when the compiled build runs."""
    from allotment import core

    if any(name.startswith("allotment.core.") for name in sys.modules):
        return ACTIVE  # already chosen: the process keeps the build its first import took
    setting = os.environ.get(ENV)
    if setting is not None and setting.strip().lower() in OFF:
        return False
    if setting is None:
        if not DEFAULT_BUILD.is_dir():
            return False
        setting = str(DEFAULT_BUILD)
    return activate(core.__path__, setting)
