"""A job's command and labels take a fast path (api/fields.py: PlainCommandFirst, PlainLabelsFirst) that passes a
plain value in one call: it must return what the whole check returns and refuse nothing differently. Checked against
the same fields without the fast path, over random values near every limit (lengths, NUL, lone surrogates, non-ASCII
text, numbers beyond 64 bits, non-finite floats), with the errors' fields and messages compared."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from allotment.api.fields import Command, Labels
from allotment.core import limits
from allotment.workloads.schemas import JobBatchIn, JobIn


class WholeCheck(BaseModel):
    """JobIn's command and labels as they are checked without the fast path."""

    command: Command = Field(default_factory=list)
    labels: Labels | None = None


def outcome(model: type[BaseModel], value: dict[str, Any]) -> tuple:
    try:
        done = model.model_validate(value)
    except ValidationError as exc:
        return "refused", [(e["loc"], e["msg"], e["type"]) for e in exc.errors(include_url=False)]
    return "passed", done.command, done.labels


def same_as_the_whole_check(value: dict[str, Any]) -> None:
    assert outcome(JobIn, value) == outcome(WholeCheck, value)


CHARACTERS = st.sampled_from(["a", "Z", "0", " ", "-", "~", "\x00", "\t", "\n", "\x7f", "é", "\u200b", "\u202e",
                              "\ud800", "\U0001f600"])
TEXT = st.text(CHARACTERS, max_size=6)
LONG = st.sampled_from([limits.MAX_ARG_CHARS, limits.MAX_ARG_CHARS + 1, limits.MAX_LABEL_VALUE,
                        limits.MAX_LABEL_VALUE + 1, limits.MAX_LABEL_KEY, limits.MAX_LABEL_KEY + 1]).map(
    lambda n: "x" * n)
NUMBERS = st.one_of(st.integers(min_value=-2**64, max_value=2**64), st.sampled_from([2**63, 2**63 - 1, -2**63,
                                                                                      1 - 2**63]),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none())
VALUES = st.one_of(TEXT, LONG, NUMBERS, st.lists(st.integers(), max_size=1), st.dictionaries(TEXT, TEXT, max_size=1))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(st.one_of(TEXT, LONG, st.integers()), max_size=5), TEXT, st.none(), st.integers()))
def test_a_command_is_judged_as_the_whole_check_judges_it(command):
    same_as_the_whole_check({"command": command})


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.dictionaries(st.one_of(TEXT, LONG), VALUES, max_size=4), st.none(), st.lists(TEXT, max_size=2),
                 TEXT))
def test_labels_are_judged_as_the_whole_check_judges_them(labels):
    same_as_the_whole_check({"command": ["run"], "labels": labels})


def test_the_limits_on_counts_and_totals_hold_on_the_fast_path():
    same_as_the_whole_check({"command": ["a"] * limits.MAX_COMMAND_ARGS})
    same_as_the_whole_check({"command": ["a"] * (limits.MAX_COMMAND_ARGS + 1)})
    per_arg = limits.MAX_ARG_CHARS
    whole = limits.MAX_COMMAND_CHARS // per_arg
    same_as_the_whole_check({"command": ["x" * per_arg] * whole})
    same_as_the_whole_check({"command": ["x" * per_arg] * whole + ["y"]})
    same_as_the_whole_check({"command": ["run"], "labels": {f"k{i}": i for i in range(limits.MAX_LABELS)}})
    same_as_the_whole_check({"command": ["run"], "labels": {f"k{i}": i for i in range(limits.MAX_LABELS + 1)}})
    value = "v" * limits.MAX_LABEL_VALUE
    most = limits.MAX_LABELS_CHARS // (limits.MAX_LABEL_VALUE + 3)
    same_as_the_whole_check({"command": ["run"], "labels": {f"k{i:02}": value for i in range(most)}})
    same_as_the_whole_check({"command": ["run"], "labels": {f"k{i:02}": value for i in range(most + 1)}})
    assert outcome(JobIn, {"command": ["run"], "labels": {f"k{i:02}": value for i in range(most + 1)}})[0] == "refused"


def test_a_batch_names_the_job_and_the_field_of_each_problem():
    """Through the batch body: a plain job passes, and the broken ones are refused at jobs.N.<field> as before."""
    body = {"jobs": [{"quota": "q", "command": ["run"], "labels": {"class": "small", "runtime_ms": 150}},
                     {"quota": "q", "command": ["run", "a\x00b"]},
                     {"quota": "q", "command": ["run"], "labels": {"k": float("inf")}}]}
    try:
        JobBatchIn.model_validate(body)
    except ValidationError as exc:
        found = [(e["loc"], e["msg"]) for e in exc.errors(include_url=False)]
    nul = "Value error, must not contain the NUL character (no program can receive it)"
    assert found == [(("jobs", 1, "command", 1), nul),
                     (("jobs", 2, "labels", "k"), "must be text, a finite number, true, false or null")]
    passed = JobBatchIn.model_validate({"jobs": body["jobs"][:1]})
    assert passed.jobs[0].labels == {"class": "small", "runtime_ms": 150} and passed.jobs[0].command == ["run"]


def test_the_fast_paths_leave_the_schema_as_it_was():
    schema = JobIn.model_json_schema()["properties"]
    assert schema["command"]["minItems"] == 1
    assert schema["labels"]["anyOf"][0]["maxProperties"] == limits.MAX_LABELS


def test_a_plain_batch_is_checked_without_a_call_per_argument_or_label():
    """What the fast path is for: a batch of plain jobs runs none of the per-argument and per-label checks (a
    Python call each, thousands per batch), which the whole check would run for every job."""
    import sys

    from allotment.api import fields

    watched = {f.__code__ for f in (fields._no_nul, fields._label_value, fields._label_keys, fields._command_size,
                                    fields._split_command)}
    calls = []

    def count(frame, event, arg):
        if event == "call" and frame.f_code in watched:
            calls.append(frame.f_code.co_name)

    jobs = [{"quota": "q", "command": ["python", "train.py"], "labels": {"class": "small", "runtime_ms": i}}
            for i in range(50)]
    sys.setprofile(count)
    try:
        JobBatchIn.model_validate({"jobs": jobs})
        plain = list(calls)
        del calls[:]
        WholeCheck.model_validate(jobs[0])
    finally:
        sys.setprofile(None)
    assert plain == []
    assert calls  # the same job through the whole check makes those calls
