"""Use the compiled scheduler core (scripts/build_core_ext.py) only while it was built from exactly these sources.

The build writes its C extensions into a folder apart from the sources, never beside them: Python imports an
extension before a .py of the same name, so a .so left beside an edited .py would silently run the old code. That
folder holds a manifest with the sha256 of every .py of this package as they were at build time and the interpreter
ABI it was built for. ``activate`` puts the folder in front of the package's ``__path__`` when the manifest matches the
sources as they are now, and otherwise leaves the package pure Python (with a warning naming the reason).

The one place in core that reads files: it runs once, at import, and only when ALLOTMENT_CORE_EXT names the folder
(core/__init__.py). Without it, or without a C compiler at build time, the same sources run interpreted.
"""

from __future__ import annotations

import hashlib
import json
import sys
import sysconfig
import warnings
from pathlib import Path

MANIFEST = "manifest.json"
ENV = "ALLOTMENT_CORE_EXT"


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
        return f"sources changed since the build: {', '.join(changed)}"
    missing = [name for name in manifest.get("extensions", []) if not (ext_root / name).is_file()]
    if missing or not manifest.get("extensions"):
        return f"extensions missing: {', '.join(missing) or 'none listed'}"
    return None


def activate(package_path: list[str], ext_root: str) -> bool:
    """Put the compiled modules in front of ``package_path`` (allotment.core's ``__path__``) if they are fresh."""
    package_dir = Path(package_path[-1])
    root = Path(ext_root).resolve()
    reason = stale_reason(root, package_dir)
    if reason is not None:
        warnings.warn(f"{ENV}={ext_root}: not used, the Python sources run instead ({reason})", stacklevel=2)
        return False
    package_path.insert(0, str(root / "allotment" / "core"))
    if str(root) not in sys.path:  # the shared library of the compiled group is a top-level module
        sys.path.append(str(root))
    return True
