"""core.hide_list: the one place values are masked (job details, logs, audit, console)."""

from __future__ import annotations

import pytest

from allotment.core import hide_list
from allotment.core.hide_list import MASK


def test_defaults_cover_cloud_keys_git_tokens_and_allotments_own_secrets():
    for name in ("AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_KEY", "GIT_PASSWORD", "GIT_TOKEN", "ALLOT_SECRET_KEY"):
        assert name in hide_list.effective(None)


@pytest.mark.parametrize(("platform", "user", "hidden", "shown"), [
    (None, (), {"AWS_SECRET_ACCESS_KEY"}, {"MY_KEY"}),  # never set: the defaults
    (["MY_KEY"], (), {"MY_KEY"}, {"AZURE_STORAGE_KEY"}),  # admins replaced the list
    ([], ["MINE"], {"MINE"}, {"AZURE_STORAGE_KEY"}),  # emptied by admins; a user's additions still count
    # The storage targets' secret variables stay hidden whatever the platform's list says.
    ([], (), {"AWS_SECRET_ACCESS_KEY", "GCS_SERVICE_ACCOUNT_JSON", "GIT_TOKEN"}, {"GIT_PASSWORD"}),
    (None, ["MINE"], {"MINE", "GIT_TOKEN"}, {"OTHER"}),
])
def test_effective_names(platform, user, hidden, shown):
    names = hide_list.effective(platform, user)
    assert hidden <= names and not shown & names


def test_mask_env_hides_listed_values_and_their_copies_in_other_values():
    env = {"GIT_TOKEN": "tok-123", "URL": "https://x:tok-123@git.example/r.git", "EPOCHS": "3"}
    assert hide_list.mask_env(env, {"GIT_TOKEN"}) == {
        "GIT_TOKEN": MASK, "URL": f"https://x:{MASK}@git.example/r.git", "EPOCHS": "3"}


def test_mask_text_replaces_every_occurrence_longest_value_first():
    values = hide_list.hidden_values({"A": "abc", "B": "abcdef", "C": ""}, {"A", "B", "C"})
    assert values == ["abcdef", "abc"]  # an empty value hides nothing
    assert hide_list.mask_text("x abcdef y abc z", values) == f"x {MASK} y {MASK} z"
    assert hide_list.mask_text("nothing here", values) == "nothing here"


def test_regex_characters_in_values_are_literal():
    assert hide_list.mask_text("p=a.c+ and abc", ["a.c+"]) == f"p={MASK} and abc"


@pytest.mark.parametrize("name", ["", "1A", "A-B", "A B", "x" * 129, 3])
def test_bad_names_are_refused_by_position(name):
    assert hide_list.problems(["OK", name]) == [(1, hide_list.RULE)]


def test_normalised_keeps_order_and_drops_duplicates():
    assert hide_list.normalised([" B", "A", "B", ""]) == ["B", "A"]


SECRET = "s3cr3t-value"
DATA = f"a={SECRET};b={SECRET}{SECRET}.".encode()


@pytest.mark.parametrize("start, end, new_end, text", [
    (0, 5, 14, f"a={MASK}"),  # the end cuts the value: it moves past it, the value is masked whole
    (2, 14, 14, MASK),  # exactly the value
    (5, 10, 14, MASK),  # inside the value: what is left of it
    (14, 17, 17, ";b="),  # nothing hidden in it
    (17, 30, 41, MASK * 2),  # a value cut, then the one right after it (their join) whole
    (41, 42, 42, "."),
])
def test_mask_span_masks_every_part_of_a_value_wherever_the_span_cuts_it(start, end, new_end, text):
    assert hide_list.mask_span(DATA, start, end, [SECRET, ""], growing=False) == (new_end, text)


@pytest.mark.parametrize("written, new_end, text", [
    (b"x s3cr", 2, "x "),  # may be the beginning of the value: held back
    (b"x s3cX", 6, "x s3cX"),  # cannot be any more
    (b"x " + SECRET.encode() + b" s", 15, f"x {MASK} "),  # a whole value, then one more beginning
])
def test_mask_span_of_a_file_still_written_holds_back_a_possible_beginning(written, new_end, text):
    assert hide_list.mask_span(written, 0, len(written), [SECRET], growing=True) == (new_end, text)
    assert hide_list.mask_span(written, 0, len(written), [SECRET], growing=False)[0] == len(written)


def test_mask_span_without_values_is_the_plain_text():
    assert hide_list.mask_span("héllo".encode(), 0, 6, [], growing=True) == (6, "héllo")
