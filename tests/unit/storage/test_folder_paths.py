"""Paths inside a folder and mount specifications, as the API and CLI give them."""

import pytest

from allotment.errors import ValidationFailed
from allotment.storage.mounts import parse_spec
from allotment.storage.stores import clean_path


@pytest.mark.parametrize(("given", "clean"), [("a.txt", "a.txt"), ("/dir/a.txt", "dir/a.txt"), ("dir/sub/", "dir/sub"),
                                              (" x ", "x")])
def test_clean_paths(given, clean):
    assert clean_path(given) == clean


@pytest.mark.parametrize("given", ["", "/", "../x", "a/../../b", "a/./b", "a//b", "a\\b", "a\x00b", "x" * 1025])
def test_paths_that_leave_or_break_the_folder_are_refused(given):
    with pytest.raises(ValidationFailed):
        clean_path(given)


@pytest.mark.parametrize(("spec", "parsed"), [
    ("data", {"folder": "data", "path": None, "read_only": False}),
    ("data:ro", {"folder": "data", "path": None, "read_only": True}),
    ("data:in/x", {"folder": "data", "path": "in/x", "read_only": False}),
    ("data:in:ro", {"folder": "data", "path": "in", "read_only": True}),
    ("data:in:rw", {"folder": "data", "path": "in", "read_only": False}),
])
def test_mount_specs(spec, parsed):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", [":x", "a:b:c", "", "a:b:c:ro"])
def test_bad_mount_specs(spec):
    with pytest.raises(ValueError, match="NAME"):
        parse_spec(spec)
