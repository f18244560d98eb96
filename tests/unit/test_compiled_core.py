"""The compiled core is used only while its manifest matches the sources (allotment/compiled_core.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import allotment
from allotment import compiled_core
from allotment.compiled_core import MANIFEST, activate, source_digests, stale_reason


@pytest.fixture(autouse=True)
def _process_choice_kept(monkeypatch):
    """activate() and choose() record what this process runs: each test gets it back as it was."""
    monkeypatch.setattr(compiled_core, "ACTIVE", compiled_core.ACTIVE)
    monkeypatch.setattr(compiled_core, "STATUS", compiled_core.STATUS)


@pytest.fixture
def package(tmp_path):
    pkg = tmp_path / "src" / "allotment" / "core"
    pkg.mkdir(parents=True)
    (pkg / "admission.py").write_text("X = 1\n")
    (pkg / "model.py").write_text("Y = 2\n")
    return pkg


def build(tmp_path, pkg, **overrides):
    root = tmp_path / "ext"
    (root / "allotment" / "core").mkdir(parents=True)
    ext = "allotment/core/admission" + sysconfig.get_config_var("EXT_SUFFIX")
    (root / ext).write_bytes(b"")
    manifest = {"soabi": sysconfig.get_config_var("SOABI"), "sources": source_digests(pkg), "extensions": [ext]}
    manifest.update(overrides)
    (root / MANIFEST).write_text(json.dumps(manifest))
    return root


def test_a_fresh_build_goes_in_front_of_the_sources(tmp_path, package, monkeypatch):
    root = build(tmp_path, package)
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = [str(package)]
    assert stale_reason(root, package) is None
    assert activate(path, str(root)) is True
    assert path == [str(root / "allotment" / "core"), str(package)]
    assert str(root) in sys.path
    assert compiled_core.ACTIVE and compiled_core.STATUS.startswith("compiled")


@pytest.mark.parametrize("change", ["edit", "add", "remove"])
def test_a_build_older_than_any_source_is_not_used(tmp_path, package, change):
    root = build(tmp_path, package)
    if change == "edit":
        (package / "model.py").write_text("Y = 3\n")
    elif change == "add":
        (package / "new.py").write_text("")
    else:
        (package / "model.py").unlink()
    path = [str(package)]
    with pytest.warns(UserWarning, match="sources changed since the build"):
        assert activate(path, str(root)) is False
    assert path == [str(package)]


def test_a_build_for_another_interpreter_or_without_its_extensions_is_not_used(tmp_path, package):
    assert "built for" in stale_reason(build(tmp_path / "a", package, soabi="cpython-399-x"), package)
    root = build(tmp_path / "b", package)
    (root / "allotment" / "core" / ("admission" + sysconfig.get_config_var("EXT_SUFFIX"))).unlink()
    assert "extensions missing" in stale_reason(root, package)
    assert "no readable" in stale_reason(tmp_path / "nowhere", package)


def test_choose_keeps_the_sources_when_told_off_or_when_there_is_no_build(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled_core, "ACTIVE", False)
    monkeypatch.setattr(sys, "modules", {k: v for k, v in sys.modules.items() if not k.startswith("allotment.core.")})
    path = list(sys.modules["allotment.core"].__path__)
    monkeypatch.setattr(sys.modules["allotment.core"], "__path__", path)
    for setting in ("off", "0", "False", ""):
        monkeypatch.setenv("ALLOTMENT_CORE_EXT", setting)
        assert compiled_core.choose() is False
    monkeypatch.delenv("ALLOTMENT_CORE_EXT")
    monkeypatch.setattr(compiled_core, "DEFAULT_BUILD", tmp_path / "absent")
    assert compiled_core.choose() is False
    monkeypatch.setenv("ALLOTMENT_CORE_EXT", str(tmp_path / "absent"))  # named but missing: said, not silent
    with pytest.warns(UserWarning, match="no readable manifest.json"):
        assert compiled_core.choose() is False
    assert path == list(sys.modules["allotment.core"].__path__)
    assert compiled_core.ACTIVE is False


def _fresh_build() -> Path | None:
    package = Path(allotment.__file__).parent / "core"
    build = compiled_core.DEFAULT_BUILD
    return build if stale_reason(build, package) is None else None


def test_the_compiled_core_takes_the_same_decisions_as_its_sources():
    """The build `make install` made, replayed against the sources over randomised churn (every decision, next_due
    and explain answers after each cycle). `make test` requires the build (ALLOT_TEST_REQUIRE_COMPILED): a core
    change that mypyc cannot compile fails here rather than running interpreted unnoticed."""
    build = _fresh_build()
    if build is None:
        if os.environ.get("ALLOT_TEST_REQUIRE_COMPILED"):
            pytest.fail("no fresh compiled core in build/core-ext: `python scripts/build_core_ext.py` says why")
        pytest.skip("no fresh compiled core (make install builds it)")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "decision_identity.py"
    done = subprocess.run([sys.executable, str(script), "--compiled", str(build), "--scenarios", "24", "--seed", "7"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identical: 24 scenarios" in done.stdout and "against compiled" in done.stdout
