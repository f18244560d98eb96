"""The free-text checks of the API (api/fields.py) take a short cut for plain ASCII: it must never accept what the
rules refuse. Checked against the rules themselves (core.names' regular expressions and the UTF-8 check) over random
text, and over every ASCII character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from allotment.api import fields
from allotment.core import names

ref = TypeAdapter(fields.Ref)
labels = TypeAdapter(fields.Labels)


def by_the_rules(text: str, multiline: bool = False) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not names.text_problems(text, multiline)


def accepted(adapter: TypeAdapter, value) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_is_judged_as_the_rules_judge_it(code):
    text = f"a{chr(code)}b"
    assert accepted(ref, text) == (not names.text_problems(text))
    assert fields._printable(text) == by_the_rules(text, multiline=True)
    assert accepted(labels, {text: "v"}) == by_the_rules(text)
    assert accepted(labels, {"k": text}) == by_the_rules(text, multiline=True)


@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=40))
def test_the_short_cut_accepts_only_what_the_rules_accept(text):
    assert fields._printable(text) == by_the_rules(text, multiline=True)
    assert accepted(ref, text) == by_the_rules(text)  # a lone surrogate is refused by the UTF-8 rule, not the pattern
    if text:
        assert accepted(labels, {text: 1}) == by_the_rules(text)


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_a_lone_surrogate_is_refused_everywhere(text):
    assert not by_the_rules(text) and not fields._printable(text)
    assert not accepted(ref, text) and not accepted(labels, {text: 1}) and not accepted(labels, {"k": text})
