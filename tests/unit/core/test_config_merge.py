"""core.config_merge: machine keys refused in vaults, and the effective configuration of enabled vaults in order."""

from __future__ import annotations

import pytest

from allotment.core.config_merge import Layer, machine_keys_in, merge, unflatten


@pytest.mark.parametrize(("tree", "found"), [
    ({"agent": {"cuda_version": "12"}}, ["agent.cuda_version"]),
    ({"agent.worker_name": "w"}, ["agent.worker_name"]),  # a dotted key is the same key
    ({"agent": {"debug": True, "default_python": "3.11", "git_user": "u"}}, ["agent.default_python", "agent.debug"]),
    ({"agent": {"git_user": "u"}, "sdk": {"debug": True}}, []),
    ({"agent": {"worker_id": {"x": 1}}}, ["agent.worker_id"]),
])
def test_machine_keys(tree, found):
    assert machine_keys_in(tree) == found


def test_later_layers_override_leaf_by_leaf_and_each_key_names_its_source():
    merged = merge([
        Layer("group-a", {"sdk": {"aws": {"region": "eu", "bucket": "b"}}, "agent": {"git_user": "g"}}),
        Layer("group-b", {"sdk.aws.region": "us"}),
        Layer("mine", {"agent": {"git_user": "me"}}),
    ])
    assert merged.tree() == {"sdk": {"aws": {"region": "us", "bucket": "b"}}, "agent": {"git_user": "me"}}
    assert merged.sources == {"sdk.aws.region": "group-b", "sdk.aws.bucket": "group-a", "agent.git_user": "mine"}


def test_a_leaf_replacing_a_section_removes_what_was_under_it_and_back():
    merged = merge([Layer("a", {"x": {"y": 1, "z": 2}}), Layer("b", {"x": 5})])
    assert merged.values == {"x": 5} and merged.sources == {"x": "b"}
    merged = merge([Layer("a", {"x": 5}), Layer("b", {"x": {"y": 1}})])
    assert merged.tree() == {"x": {"y": 1}}


def test_lists_and_empty_sections_are_values():
    merged = merge([Layer("a", {"l": [1, 2], "e": {}}), Layer("b", {"l": [3]})])
    assert merged.tree() == {"l": [3], "e": {}}


def test_unflatten_nests_dotted_paths():
    assert unflatten({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
