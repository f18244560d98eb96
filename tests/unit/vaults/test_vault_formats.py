"""Vault content in JSON, YAML and HOCON: read with the maintained parsers, refused with the parser's line and column,
and HOCON never reaching the server's files or environment."""

from __future__ import annotations

import pytest

from allotment.vaults.formats import Unreadable, format_of_filename, parse


@pytest.mark.parametrize(("fmt", "text"), [
    ("json", '{"sdk": {"aws": {"region": "eu"}}}'),
    ("yaml", "sdk:\n  aws:\n    region: eu  # a comment\n"),
    ("hocon", "sdk.aws {\n  region = eu\n}\n"),
])
def test_each_format_reads_the_same_configuration(fmt, text):
    assert parse(fmt, text) == {"sdk": {"aws": {"region": "eu"}}}


@pytest.mark.parametrize(("fmt", "text", "line", "column"), [
    ("json", '{\n  "a": 1,\n}', 3, 1),
    ("yaml", "a: [1\nb: 2", 2, 2),
    ("hocon", "a {\n  b = [1, 2\n}", 3, 1),
])
def test_invalid_content_names_the_parsers_line_and_column(fmt, text, line, column):
    with pytest.raises(Unreadable) as caught:
        parse(fmt, text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value).startswith(f"line {line}, column {column}: ")


def test_hocon_substitutions_resolve_within_the_vault_only(monkeypatch):
    monkeypatch.setenv("VAULT_TEST_SECRET", "server-secret")
    assert parse("hocon", "a = 1\nb = ${a}") == {"a": 1, "b": 1}
    with pytest.raises(Unreadable, match="names no key of this vault") as caught:
        parse("hocon", "x = 1\nleak = ${VAULT_TEST_SECRET}")
    assert (caught.value.line, caught.value.column) == (2, 8)
    assert parse("hocon", "leak = ${?VAULT_TEST_SECRET}\nb = 2") == {"b": 2}  # optional: simply unset
    with pytest.raises(Unreadable, match="refers to the key itself"):
        parse("hocon", 'VAULT_TEST_SECRET = ${VAULT_TEST_SECRET}"x"')


@pytest.mark.parametrize("text", ['include "/etc/passwd"', 'a = 1\ninclude required(file("/etc/hostname"))',
                                  'include url("http://127.0.0.1:1/x")'])
def test_hocon_includes_are_refused(text):
    with pytest.raises(Unreadable, match="include is not allowed"):
        parse("hocon", text)


@pytest.mark.parametrize(("fmt", "text"), [("json", "[1]"), ("yaml", "- 1"), ("yaml", "just text"),
                                           ("yaml", "when: 2020-01-01")])
def test_a_vault_holds_an_object_of_plain_values(fmt, text):
    with pytest.raises(Unreadable):
        parse(fmt, text)


def test_empty_content_is_an_empty_configuration():
    assert parse("yaml", "") == {} and parse("hocon", "  \n") == {} and parse("yaml", "# only a comment") == {}


@pytest.mark.parametrize(("name", "fmt"), [("a.json", "json"), ("b.YML", "yaml"), ("c.yaml", "yaml"),
                                           ("clearml.conf", "hocon"), ("x.txt", None), ("noext", None)])
def test_format_of_filename(name, fmt):
    assert format_of_filename(name) == fmt
