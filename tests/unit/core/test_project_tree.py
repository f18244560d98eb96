"""core.projects: ancestor chains, cycles and the depth bound, as tables over parent maps."""

from __future__ import annotations

import pytest

from allotment.core import projects as tree

# 1 -> 2 -> 3 -> 4 ; 1 -> 5 ; 6 (another root)
PARENTS = {1: None, 2: 1, 3: 2, 4: 3, 5: 1, 6: None}


@pytest.mark.parametrize(("project", "chain"), [(1, [1]), (4, [4, 3, 2, 1]), (5, [5, 1]), (6, [6])])
def test_ancestor_chain_is_nearest_first(project, chain):
    assert tree.ancestor_ids(PARENTS, project) == chain


def test_ancestor_chain_stops_at_a_stored_cycle():
    assert tree.ancestor_ids({1: 2, 2: 1}, 1) == [1, 2]


@pytest.mark.parametrize(("project", "below"), [(1, [2, 5, 3, 4]), (3, [4]), (4, []), (6, [])])
def test_descendants_parents_first(project, below):
    assert tree.descendant_ids(PARENTS, project) == below


@pytest.mark.parametrize(("project", "height"), [(1, 4), (2, 3), (4, 1), (5, 1)])
def test_subtree_height(project, height):
    assert tree.subtree_height(PARENTS, project) == height


@pytest.mark.parametrize(("project", "new_parent", "problem"), [
    (None, None, None),  # a new root
    (None, 4, None),  # a new project at depth 5
    (2, 6, None),  # move a subtree under another root
    (2, None, None),  # move to the root
    (2, 2, "a project cannot move under itself"),
    (1, 4, "a project cannot move under one of its own sub-projects"),
    (2, 3, "a project cannot move under one of its own sub-projects"),
])
def test_placement(project, new_parent, problem):
    assert tree.placement_problem(PARENTS, project, new_parent) == problem


def test_depth_bound_counts_the_moved_subtree():
    chain = {i: (i - 1 if i > 1 else None) for i in range(1, tree.MAX_DEPTH + 1)}  # a chain MAX_DEPTH deep
    assert tree.placement_problem(chain, None, tree.MAX_DEPTH) == (
        f"projects nest at most {tree.MAX_DEPTH} levels deep; this would make {tree.MAX_DEPTH + 1}")
    assert tree.placement_problem(chain, None, tree.MAX_DEPTH - 1) is None
    # A 3-level subtree (100 -> 101 -> 102) fits under depth MAX_DEPTH - 3, not under MAX_DEPTH - 2.
    both = {**chain, 100: None, 101: 100, 102: 101}
    assert tree.placement_problem(both, 100, tree.MAX_DEPTH - 3) is None
    assert "levels deep" in tree.placement_problem(both, 100, tree.MAX_DEPTH - 2)


def test_flatten_is_tree_order_with_sibling_order_kept():
    order = [6, 1, 5, 2, 3, 4]  # e.g. by name
    assert tree.flatten(PARENTS, order) == [(6, 0), (1, 0), (5, 1), (2, 1), (3, 2), (4, 3)]


def test_paths():
    names = {1: "vision", 2: "detection", 3: "yolo", 4: "v8", 5: "seg", 6: "nlp"}
    assert tree.path_of(PARENTS, names, 4) == "vision/detection/yolo/v8"
    assert tree.split_path(" vision//detection/ ") == ["vision", "detection"]
