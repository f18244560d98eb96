"""Field types shared by every request schema: bounded integers, finite numbers, names, free text, quantities,
commands and labels. Each carries its rule into the OpenAPI (minimum/maximum, maxLength, pattern, maxItems) and
refuses what breaks it with a 422 naming the field; the numbers live in core/limits.py.

Numbers are strict: JSON `true` is not 1 and a float is not an integer field's value; NaN and Infinity (which
Python's JSON reader accepts) are refused. Constrained strings also refuse lone surrogates ("\\ud800"), which
could not be stored.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    Strict,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from allotment.core import limits, names, passwords
from allotment.core.names import is_digits
from allotment.core.quantity import format_raw

# --- integers and numbers ----------------------------------------------------------------------------------------


def _whole_number(value: Any) -> Any:
    """A float with no fraction (76.0) is the integer it spells: JSON Schema counts it as an integer, and so do
    JSON encoders that write every number as a float. Booleans, fractions, NaN and Infinity are left for the strict
    integer check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def Int(ge: int, le: int):
    """A strict whole number from `ge` to `le`: JSON `true` is not 1, 0.5 is refused, 76.0 is 76."""
    return Annotated[int, Strict(), Field(ge=ge, le=le), BeforeValidator(_whole_number)]


def Float(ge: float, le: float):
    return Annotated[float, Strict(), Field(ge=ge, le=le, allow_inf_nan=False)]


Priority = Int(-limits.MAX_PRIORITY, limits.MAX_PRIORITY)

# Path and query parameters arrive as text: bounded, not strict.
IdPath = Annotated[int, Path(ge=1, le=limits.MAX_ID, description="an id")]
Offset = Annotated[int, Query(ge=0, le=limits.MAX_OFFSET)]
PageNumber = Annotated[int, Query(ge=1, le=limits.MAX_PAGE)]


def Limit(most: int):
    return Annotated[int, Query(ge=1, le=most)]


# --- times -------------------------------------------------------------------------------------------------------


def _iso_only(value: Any) -> Any:
    """pydantic reads a number (or numeric text such as "0.5") as Unix time; the API takes ISO 8601 text only."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMERIC.match(value)):
        raise PydanticCustomError("datetime", "must be an ISO 8601 date and time such as 2024-05-01T12:00:00Z")
    return value


_NUMERIC = re.compile(r"^\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*$")
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


# --- text --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaPattern:
    """Puts a pattern into the JSON schema only: the check itself is a validator with a sentence for a message."""

    pattern: str

    def __get_pydantic_json_schema__(self, core_schema, handler):
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


@dataclass(frozen=True)
class SchemaRules:
    """Rules a service checks itself (so that it can report every broken rule of every field at once), stated in
    the JSON schema so that clients see them."""

    rules: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(self, core_schema, handler):
        schema = handler(core_schema)
        schema.update(dict(self.rules))
        return schema


@dataclass(frozen=True)
class KeyRules:
    """A map's key rules as `propertyNames`. pydantic writes a key pattern as `patternProperties`, which constrains
    only the keys that match it and leaves every other key free, so a client (or a test generator) reading the
    schema would take any key for valid."""

    def __get_pydantic_json_schema__(self, core_schema, handler):
        schema = handler(core_schema)
        patterns = schema.pop("patternProperties", {})
        if len(patterns) == 1:
            (pattern, value), = patterns.items()
            schema["additionalProperties"] = value
            schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
        elif patterns:
            schema["patternProperties"] = patterns
        return schema


# The quota service refuses negative values itself, together with every other problem of the request; the schema
# states the minimum.
Seconds = Annotated[int, Strict(), Field(ge=-limits.MAX_DURATION_S, le=limits.MAX_DURATION_S),
                    SchemaRules((("minimum", 0),)), BeforeValidator(_whole_number)]
Weight = Annotated[float, Strict(), Field(ge=-limits.MAX_WEIGHT, le=limits.MAX_WEIGHT, allow_inf_nan=False),
                   SchemaRules((("minimum", 0),))]
GpuHours = Annotated[float, Strict(), Field(ge=-limits.MAX_GPU_HOURS, le=limits.MAX_GPU_HOURS, allow_inf_nan=False),
                     SchemaRules((("minimum", 0),))]

# Loosely bounded here (refusing lone surrogates and megabytes); the identity service applies the real rules.
_CHECKED_BY_SERVICE = StringConstraints(max_length=4096)
Username = Annotated[str, _CHECKED_BY_SERVICE, SchemaRules((
    ("pattern", names.NAME_REGEX), ("minLength", 1), ("maxLength", limits.MAX_NAME),
    ("description", names.NAME_HELP)))]
# The password policy (core/passwords.py) as a pattern that accepts exactly what the policy accepts: an ASCII letter
# (L), an ASCII digit (D) and an ASCII punctuation mark (S) in any order, anything else anywhere ([\s\S], which
# also spans line breaks). The six orders are spelled out rather than written as lookaheads: generating strings for
# lookaheads costs test generators (Schemathesis, hypothesis) tens of seconds per field, these take a fraction of one.
_L, _D, _S = r"[A-Za-z]", r"[0-9]", r"[!-/:-@\[-`{-~]"
PASSWORD_REGEX = r"^[\s\S]*(?:" + "|".join(
    rf"{a}[\s\S]*{b}[\s\S]*{c}" for a, b, c in itertools.permutations((_L, _D, _S))) + r")[\s\S]*$"
Password = Annotated[str, _CHECKED_BY_SERVICE, SchemaRules((
    ("pattern", PASSWORD_REGEX), ("minLength", passwords.MIN_LENGTH), ("maxLength", passwords.MAX_LENGTH),
    ("description", (f"{passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters with a letter, a digit and a "
                     "special character"))))]
ServiceCheckedText = Annotated[str, _CHECKED_BY_SERVICE]
# A user's full name and resource policy, checked by the identity service with the user's other fields.
ServiceCheckedFullName = Annotated[str, _CHECKED_BY_SERVICE, SchemaRules((
    ("pattern", names.TEXT_REGEX), ("maxLength", limits.MAX_FULL_NAME)))]
ServiceCheckedPolicyName = Annotated[str, _CHECKED_BY_SERVICE, SchemaRules((
    ("pattern", names.SPACED_NAME_REGEX), ("minLength", 1), ("maxLength", limits.MAX_NAME),
    ("description", "the name of a resource policy (null: the policy named 'default'): " + names.NAME_HELP
     + " (single spaces between words allowed)")))]
# An e-mail address: the identity service validates it (email_validator, without deliverability) and its length.
Email = Annotated[str, _CHECKED_BY_SERVICE, SchemaRules((
    ("format", "email"), ("minLength", 3), ("maxLength", limits.MAX_EMAIL)))]


def _name_check(what: str, max_length: int, spaces: bool):
    def check(value: str) -> str:
        problems = names.name_problems(value, what, max_length, spaces)
        if problems:
            raise ValueError(problems[0])
        return value
    return check


def Name(what: str = "name", max_length: int = limits.MAX_NAME, spaces: bool = False):
    """A name of a user or an object (core/names.py): ASCII, no separators, not digits only; `spaces` allows single
    spaces between words (objects such as pools and quotas)."""
    return Annotated[str, StringConstraints(min_length=1, max_length=max_length), AfterValidator(
        _name_check(what, max_length, spaces)), SchemaPattern(names.SPACED_NAME_REGEX if spaces else names.NAME_REGEX),
        Field(description=names.NAME_HELP + (" (single spaces between words allowed)" if spaces else ""))]


def _plain(text: str) -> bool:
    """ASCII without control characters: what nearly every value is, and free text by every rule here (the regular
    expressions and the encoding check are for the rest; a batch of jobs checks thousands of values)."""
    return text.isascii() and text.isprintable()


def _text_check(multiline: bool):
    def check(value: str) -> str:  # _plain written out: this runs for every text field of every request
        if not (value.isascii() and value.isprintable()) and names.text_problems(value, multiline):
            raise ValueError(names.TEXT_RULE)
        return value
    return check


def Text(max_length: int = limits.MAX_SHORT_TEXT, multiline: bool = False):
    """Free text: any character but controls, zero-width and bidi formatting (tabs and line breaks if multiline)."""
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(_text_check(multiline)),
                     SchemaPattern(names.MULTILINE_REGEX if multiline else names.TEXT_REGEX)]


Ref = Text(limits.MAX_SHORT_TEXT)  # a reference to another object: its name, or its id as text
Description = Text(limits.MAX_DESCRIPTION, multiline=True)
FullName = Text(limits.MAX_FULL_NAME)
Refs = Annotated[list[Ref], Field(max_length=limits.MAX_LIST_ITEMS)]


# --- quantities --------------------------------------------------------------------------------------------------


def _printable(text: str) -> bool:
    """No lone surrogate (it cannot be stored or sent back) and no hidden character."""
    if _plain(text):
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not names.text_problems(text, multiline=True)


def _amount(value: Any) -> str | int | float:
    """A quantity as text ("16Gi", "500m", "unlimited") or a number; the services read and check it."""
    if isinstance(value, str):
        if len(value) > limits.MAX_QUANTITY_TEXT or not _printable(value):
            raise PydanticCustomError("quantity", f"must be a quantity of at most {limits.MAX_QUANTITY_TEXT} "
                                                  "characters such as 4, 0.5, 500m or 16Gi")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("quantity", "must be a number or a quantity such as 4, 0.5, 500m or 16Gi")
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("quantity", "must be a finite number (or \"unlimited\" where that is allowed)")
    if abs(value) > limits.MAX_AMOUNT:
        raise PydanticCustomError("quantity", f"must be at most {limits.MAX_AMOUNT}")
    return value


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" for c in word)


# What core/quantity.py reads as text: a decimal number with an optional unit (the resource decides which units are
# allowed: Ki..Ei, k..E and B for memory, m for cpu), or one of the words for unlimited, with spaces around. The
# spaces are those str.strip() removes less the control characters, which quantities refuse (_printable).
_SPACE = r"[\t\n\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
QUANTITY_REGEX = (f"^{_SPACE}*(?:(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+){_SPACE}*[A-Za-z]*|"
                  + "|".join(_any_case(w) for w in ("unlimited", "infinity", "inf")) + f"|\u221e){_SPACE}*$")
Amount = Annotated[str | int | float, PlainValidator(_amount), WithJsonSchema({"anyOf": [
    {"type": "string", "minLength": 1, "maxLength": limits.MAX_QUANTITY_TEXT, "pattern": QUANTITY_REGEX},
    {"type": "number", "minimum": -limits.MAX_AMOUNT, "maximum": limits.MAX_AMOUNT}]})]


def range_regex(most: int) -> str:
    """A regex (no anchors) of the decimal numbers 0..most written without leading zeros, so that a schema can state
    a bound on numbers given as text."""
    digits = str(most)
    parts = ["[0-9]"] + [f"[1-9][0-9]{{{n - 1}}}" for n in range(2, len(digits))] if len(digits) > 1 else []
    for i, d in enumerate(digits):
        low = 1 if i == 0 and len(digits) > 1 else 0
        if int(d) > low:
            rest = len(digits) - i - 1
            parts.append(digits[:i] + f"[{low}-{int(d) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(digits)
    return "(?:" + "|".join(parts) + ")"


def _duration(value: Any) -> str | int:
    """Seconds, or text such as 90m, 2h, 1h30m; workloads/requests.py reads it."""
    value = _whole_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= limits.MAX_DURATION_S:
            raise PydanticCustomError("duration", f"must be 0 to {limits.MAX_DURATION_S} seconds")
        return value
    if isinstance(value, str) and len(value) <= limits.MAX_QUANTITY_TEXT and _printable(value):
        return value
    raise PydanticCustomError("duration", "must be a number of seconds or a duration such as 90m, 2h or 1h30m")


def positive_range_regex(most: int) -> str:
    """Like range_regex, without 0: the decimal numbers 1..most written without leading zeros."""
    if most < 10:
        return f"(?:[1-{most}])" if most >= 1 else "(?!)"
    parts = range_regex(most)[3:-1].split("|")
    return "(?:" + "|".join("[1-9]" if p == "[0-9]" else p for p in parts) + ")"


# The schema states the plain forms of a duration (seconds, or one number of d, h, m or s), each within the limit;
# the server also reads sums such as 1h30m, which a pattern cannot bound, so they are described, not stated.
_DAYS = limits.MAX_DURATION_S // 86400
DURATION_REGEX = (f"^(?:{positive_range_regex(limits.MAX_DURATION_S)}s?|{positive_range_regex(_DAYS)}d|"
                  f"{positive_range_regex(_DAYS * 24)}h|{positive_range_regex(_DAYS * 1440)}m)$")
Duration = Annotated[str | int, PlainValidator(_duration), WithJsonSchema({"anyOf": [
    {"type": "string", "maxLength": limits.MAX_QUANTITY_TEXT, "pattern": DURATION_REGEX,
     "description": "seconds, or a number of d, h, m or s; sums such as 1h30m are read too"},
    {"type": "integer", "minimum": 1, "maximum": limits.MAX_DURATION_S}]})]


def Count(most: int):
    """A whole number from 0 to `most`, or the same as text ("5"), or a word for unlimited ("unlimited", "inf", "∞",
    any case, spaces around). Text is held to the schema's own pattern, so the two cannot disagree."""
    words = "|".join(_any_case(w) for w in ("unlimited", "inf")) + "|\u221e"
    pattern = f"^{_SPACE}*(?:{range_regex(most)}|{words}){_SPACE}*$"
    matcher = re.compile(pattern)

    def check(value: Any) -> str | int:
        value = _whole_number(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= most:
                return value
            raise PydanticCustomError("count", f"must be at most {most} (or unlimited)" if value > most
                                      else f"must be a whole number from 0 to {most}, or unlimited")
        if isinstance(value, str) and len(value) <= limits.MAX_QUANTITY_TEXT and matcher.fullmatch(value):
            return value
        if isinstance(value, str) and is_digits(value.strip()):
            raise PydanticCustomError("count", f"must be at most {most} (or unlimited)")
        raise PydanticCustomError("count", f"must be a whole number from 0 to {most}, or unlimited")
    return Annotated[str | int, PlainValidator(check), WithJsonSchema({"anyOf": [
        {"type": "string", "maxLength": limits.MAX_QUANTITY_TEXT, "pattern": pattern},
        {"type": "integer", "minimum": 0, "maximum": most}]})]


def _decimal_up_to(most: int) -> str:
    """0..most with up to three decimals (the raw unit is a thousandth), e.g. 511.999 but not 512.5."""
    below = f"{range_regex(most - 1)}(?:\\.[0-9]{{1,3}})?" if most > 0 else "(?!)"
    return f"(?:{below}|{most}(?:\\.0{{1,3}})?)"


_PLAIN_AMOUNT = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*(?:m|[KMGT]i?B?)?\s*")
_EXAMPLES = {"cpu": "8, 0.5 or 500m", "gpu": "2 or 0.5", "memory": "64Gi or 512Mi"}


def Capped(resource: str, most_raw: int, bare_gib: bool = False):
    """A per-job cap of a resource policy: a whole number of units from 0 up to the cap, or text in the forms the
    server reads (cpu: cores with up to three decimals or millicores 'NNNm'; gpu: GPUs with up to three decimals;
    memory: bytes, Mi, Gi or Ti), or a word for unlimited. Text is held to the schema's own pattern, so the schema
    and the server agree (a fraction is given as text: "0.5"). With bare_gib, a bare memory number is whole GiB (the
    unit of Backend.AI's dialog) instead of bytes."""
    words = "|".join(_any_case(w) for w in ("unlimited", "inf")) + "|\\u221e"
    if resource == "cpu":
        units, forms = most_raw // 1000, [_decimal_up_to(most_raw // 1000), f"{range_regex(most_raw)}m"]
    elif resource == "gpu":
        units, forms = most_raw // 1000, [_decimal_up_to(most_raw // 1000)]
    else:  # memory: bare numbers in bytes, or in whole GiB with bare_gib
        units = most_raw // 2**30 if bare_gib else most_raw
        forms = [range_regex(units)] + [f"{range_regex(most_raw // scale)}{unit}(?:B)?"
                                           for unit, scale in (("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40))]
    pattern = f"^{_SPACE}*(?:{'|'.join(forms)}|{words}){_SPACE}*$"
    matcher = re.compile(pattern)
    top = format_raw(most_raw, resource)
    too_much = f"must be at most {top} (or unlimited)"
    unreadable = f"must be an amount from 0 to {top} (such as {_EXAMPLES[resource]}), or unlimited"

    def check(value: Any) -> str | int:
        value = _whole_number(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= units:
                return value
            raise PydanticCustomError("capped", too_much if value > units else unreadable)
        if isinstance(value, str) and len(value) <= limits.MAX_QUANTITY_TEXT:
            if matcher.fullmatch(value):
                return value
            if _PLAIN_AMOUNT.fullmatch(value):
                raise PydanticCustomError("capped", too_much)
        raise PydanticCustomError("capped", unreadable)
    return Annotated[str | int, PlainValidator(check), WithJsonSchema({"anyOf": [
        {"type": "string", "maxLength": limits.MAX_QUANTITY_TEXT, "pattern": pattern},
        {"type": "integer", "minimum": 0, "maximum": units}]})]


# --- commands and labels -----------------------------------------------------------------------------------------


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (no program can receive it)")
    return value


Argument = Annotated[str, StringConstraints(max_length=limits.MAX_ARG_CHARS), AfterValidator(_no_nul)]


def _split_command(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > limits.MAX_COMMAND_CHARS:
            raise PydanticCustomError("too_long", f"must be at most {limits.MAX_COMMAND_CHARS} characters "
                                                  f"(got {len(value)})")
        return value.split()
    return value


def _command_size(value: list[str]) -> list[str]:
    total = sum(len(arg) for arg in value)
    if total > limits.MAX_COMMAND_CHARS:
        raise PydanticCustomError("too_long", f"must be at most {limits.MAX_COMMAND_CHARS} characters in all "
                                              f"(got {total})")
    return value


# Fast paths for the fields of a job, which a batch checks by the thousand (workloads/schemas.py): each passes in one
# call a value that the whole check would return as it is, and sends everything else through the whole check, which
# words the errors. Put one last in its field's annotations and give the field no constraints of its own: pydantic
# applies those inside the whole check, which the fast path skips.


def _plain_command_first(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A list of ASCII arguments that keeps every rule is what the whole check returns: passed in one call, the rest
    (text to split, other characters, whatever breaks a rule, with its error) through the whole check."""
    if type(value) is list and len(value) <= limits.MAX_COMMAND_ARGS:
        total = 0
        for arg in value:
            if type(arg) is not str or len(arg) > limits.MAX_ARG_CHARS or not arg.isascii() or "\x00" in arg:
                return handler(value)
            total += len(arg)
        if total <= limits.MAX_COMMAND_CHARS:
            return value
    return handler(value)


Command = Annotated[
    list[Argument], Field(max_length=limits.MAX_COMMAND_ARGS), AfterValidator(_command_size),
    BeforeValidator(_split_command, json_schema_input_type=Annotated[
        list[Argument], Field(max_length=limits.MAX_COMMAND_ARGS)] | Annotated[
        str, StringConstraints(max_length=limits.MAX_COMMAND_CHARS)]),
]
PlainCommandFirst = WrapValidator(_plain_command_first)


def _label_value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > limits.MAX_LABEL_VALUE:
            raise PydanticCustomError("too_long", f"must be at most {limits.MAX_LABEL_VALUE} characters "
                                                  f"(got {len(value)})")
        if not _printable(value):
            raise PydanticCustomError("text", names.TEXT_RULE + " (nor an unpaired surrogate)")
        return value
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise PydanticCustomError("too_large", "must fit in 64 bits")
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise PydanticCustomError("label", "must be text, a finite number, true, false or null")


def _label_keys(value: Any) -> Any:
    """Keys are checked here, so that an error never has to quote a key that cannot be printed."""
    if not isinstance(value, dict):
        return value
    if len(value) > limits.MAX_LABELS:
        raise PydanticCustomError("too_many", f"at most {limits.MAX_LABELS} labels (got {len(value)})")
    total = 0
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > limits.MAX_LABEL_KEY \
                or not (_plain(key) or (_printable(key) and not names.text_problems(key))):
            raise PydanticCustomError("label_key", f"label keys are 1 to {limits.MAX_LABEL_KEY} printable "
                                                   "characters")
        total += len(key) + (len(item) if isinstance(item, str) else 0)
    if total > limits.MAX_LABELS_CHARS:
        raise PydanticCustomError("too_long", f"at most {limits.MAX_LABELS_CHARS} characters of keys and values "
                                              f"in all (got {total})")
    return value


LabelValue = Annotated[Any, PlainValidator(_label_value), WithJsonSchema(
    {"anyOf": [{"type": "string", "maxLength": limits.MAX_LABEL_VALUE, "pattern": names.MULTILINE_REGEX},
               {"type": "number"}, {"type": "boolean"},
               {"type": "null"}]})]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_LABEL_KEY, pattern=names.TEXT_REGEX)]
def _plain_labels_first(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Labels of plain text keys and values (or numbers, booleans, null) within every limit are what the whole check
    returns: passed in one call (a batch of jobs checks thousands of labels), the rest through the whole check."""
    if type(value) is not dict or len(value) > limits.MAX_LABELS:
        return handler(value)
    total = 0
    for key, item in value.items():
        if type(key) is not str or not key or len(key) > limits.MAX_LABEL_KEY or not (key.isascii()
                                                                                  and key.isprintable()):
            return handler(value)
        kind = type(item)
        if kind is str:
            if len(item) > limits.MAX_LABEL_VALUE or not (item.isascii() and item.isprintable()):
                return handler(value)
            total += len(item)
        elif kind is int:
            if not -2**63 < item < 2**63:
                return handler(value)
        elif kind is float:
            if not math.isfinite(item):
                return handler(value)
        elif item is not None and kind is not bool:
            return handler(value)
        total += len(key)
    return value if total <= limits.MAX_LABELS_CHARS else handler(value)


Labels = Annotated[dict[LabelKey, LabelValue], BeforeValidator(_label_keys), Field(max_length=limits.MAX_LABELS),
                   SchemaRules((("maxProperties", limits.MAX_LABELS),)), KeyRules()]
PlainLabelsFirst = WrapValidator(_plain_labels_first)
