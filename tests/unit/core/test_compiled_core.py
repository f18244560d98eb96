"""The compiled core is used only while its manifest matches the sources (allotment/core/compiled.py)."""

from __future__ import annotations

import json
import sys
import sysconfig

import pytest

from allotment.core.compiled import MANIFEST, activate, source_digests, stale_reason


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
