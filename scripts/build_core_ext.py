"""Compile the scheduler core's cycle modules with mypyc into build/core-ext (`make install` runs it).

Run:  python scripts/build_core_ext.py [--out build/core-ext]
      (the server and the CLI then use it while it matches the sources: allotment/compiled_core.py)

Needs mypy (mypyc) 1.13 and a C compiler with the interpreter's headers; without them, or when mypyc fails, it says
so and exits 0: the core then runs from its .py files, as it always can (the suite's identity test, which `make test`
requires, fails instead). The .py files stay the only source: the build compiles a copy
of src/ in a temporary folder, and writes into OUT only the extensions and a manifest (the sha256 of every .py of
allotment/core and the interpreter ABI). Nothing is ever written beside the sources, so an edited .py can never be
shadowed by an old .so: a build whose manifest no longer matches the sources is refused at import.
About a minute on two cores (one C file of ~150,000 lines; the compiler takes most of it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))
os.environ["ALLOTMENT_CORE_EXT"] = "off"  # this process reads the sources; an old build must not load (or warn)

from allotment.compiled_core import MANIFEST, source_digests

# The import closure of allotment.core.admission, less the modules that mypyc 1.13 cannot compile as they are or that
# the cycle barely uses: model (decisions built with object.__new__ and slot stores), quantity (a class attribute
# assigned after the class, `__rmul__ = __mul__`) and quota_tree (StrEnum members read from other modules).
MODULES = (
    "admission", "blocking", "demand", "devices", "explain", "fit_index", "inventory", "node_shortfall", "order_keys",
    "placement", "pool_choice", "preemption", "queue_inspection", "queues", "reclaiming", "resources",
    "running_index", "state", "usage", "wakeups",
)

SETUP = """
from setuptools import setup
from mypyc.build import mypycify
paths = {paths!r}
setup(name="allotment-core-ext", ext_modules=mypycify(paths, opt_level="3"), script_args=["build_ext", "--inplace"])
"""


def toolchain_missing() -> str | None:
    try:
        import mypyc  # noqa: F401
    except ImportError:
        return "mypy (mypyc) is not installed"
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.is_file():
        return f"no {include} (the interpreter's C headers)"
    if shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc") is None:
        return "no C compiler"
    return None


def build(out: Path) -> None:
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
    package = SRC / "allotment" / "core"
    digests = source_digests(package)
    with tempfile.TemporaryDirectory(prefix="core-ext-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(SRC / "allotment", work / "allotment", ignore=shutil.ignore_patterns("__pycache__"))
        paths = [f"allotment/core/{m}.py" for m in MODULES]
        (work / "setup_ext.py").write_text(SETUP.format(paths=paths))
        started = time.monotonic()
        done = subprocess.run([sys.executable, "setup_ext.py"], cwd=work, capture_output=True, text=True, check=False)
        if done.returncode:  # (mypyc type-checks first: an error in an edited core module shows here)
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            print(f"compiled core not built (mypyc exited {done.returncode}, above): the scheduler core runs from "
                  "its .py files")
            return
        if source_digests(package) != digests:
            print("compiled core not built (its sources changed during the build): run it again")
            return
        # one small extension per module (allotment/core/NAME.*.so) and the group's shared library at the top
        built = sorted(str(p.relative_to(work)) for p in [*work.glob(f"*__mypyc{ext_suffix}"),
                                                          *(work / "allotment" / "core").glob(f"*{ext_suffix}")])
        staging = out.with_name(out.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "allotment" / "core").mkdir(parents=True)
        for name in built:
            shutil.copy2(work / name, staging / name)
        manifest = {"soabi": sysconfig.get_config_var("SOABI"), "python": sys.version.split()[0],
                    "mypy": _mypy_version(), "modules": list(MODULES), "extensions": built, "sources": digests,
                    "build_s": round(time.monotonic() - started, 1)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    print(f"compiled core: {len(built)} extensions in {out} ({manifest['build_s']} s), used while they match the "
          "sources (allotment/compiled_core.py)")


def _mypy_version() -> str:
    from mypy.version import __version__

    return __version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "core-ext")
    args = parser.parse_args()
    missing = toolchain_missing()
    if missing:
        print(f"compiled core not built ({missing}): the scheduler core runs from its .py files")
        return
    build(args.out.resolve())


if __name__ == "__main__":
    main()
