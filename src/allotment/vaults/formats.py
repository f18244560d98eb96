"""Reading a vault's content in its format (JSON, YAML or HOCON) with the maintained parsers: the standard library's
json, PyYAML (libyaml's safe loader where present) and pyhocon. Invalid content is refused with the parser's line and
column.

HOCON can pull text from elsewhere: `include` reads a file or a URL, and a substitution that names no key of the
document falls back to an environment variable. On the server both would hand the server's files or environment
(its secret key) to whoever writes a vault, so includes are refused, and substitutions resolve within the vault
only (pyhocon's resolver, with its environment fallback removed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pyparsing
import yaml
from pyhocon import ConfigParser, ConfigTree
from pyhocon.exceptions import ConfigException, ConfigMissingException, ConfigSubstitutionException

FORMATS = ("json", "yaml", "hocon")
EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".conf": "hocon", ".hocon": "hocon"}
SUFFIX = {"json": ".json", "yaml": ".yaml", "hocon": ".conf"}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# `include` as HOCON reads it: a statement starting with the keyword, then a quoted name, url(, file(, package( or
# required(. Refused before parsing, since pyhocon performs an include while it parses.
_INCLUDE = re.compile(r'(?:^|(?<=[\s{,]))include\s*(?:"|url\s*\(|file\s*\(|package\s*\(|required\s*\()',
                      re.IGNORECASE | re.MULTILINE)


@dataclass
class Unreadable(Exception):
    """Content its format's parser refuses: where (1-based line and column, when the parser says) and why."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        return where + self.message


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


class _VaultHoconParser(ConfigParser):
    """pyhocon's parser without the environment: a substitution resolves within the document or not at all."""

    @classmethod
    def _resolve_variable(cls, config, substitution):
        try:
            return True, config.get(substitution.variable)
        except ConfigMissingException:
            if substitution.optional:
                return False, None
            line, column = _position(substitution.instring, substitution.loc)
            raise Unreadable(f"${{{substitution.variable}}} names no key of this vault (a vault's substitutions "
                             f"refer to its own keys, never to the server's environment)", line, column) from None

    @classmethod
    def _fixup_self_references(cls, config, accept_unresolved=False):
        # A key that refers to itself with no earlier value (PATH = ${PATH}":/x") is read from the environment by
        # pyhocon: refuse it instead.
        if isinstance(config, ConfigTree) and config.root:
            for key in config:
                history = config.history[key]
                if len(history) != 1:
                    continue
                for substitution in cls._find_substitutions(history[0]):
                    path = ConfigTree.parse_key(substitution.variable)
                    if path[0] != key or (len(path) > 1 and config.get(substitution.variable, None) is not None):
                        continue
                    line, column = _position(substitution.instring, substitution.loc)
                    raise Unreadable(f"${{{substitution.variable}}} refers to the key itself with no earlier value "
                                     f"(a vault never reads the server's environment)", line, column)
        return super()._fixup_self_references(config, accept_unresolved)


def _hocon(text: str) -> dict[str, Any]:
    found = _INCLUDE.search(text)
    if found:
        line, column = _position(text, found.start())
        raise Unreadable("include is not allowed in a vault (it would read the server's files or fetch a URL)",
                         line, column)
    try:
        tree = _VaultHoconParser.parse(text, basedir=None, resolve=True)
    except pyparsing.ParseBaseException as exc:
        raise Unreadable(exc.msg, exc.lineno, exc.col) from None
    except ConfigSubstitutionException as exc:
        where = re.search(r"line:\s*(\d+),\s*col:\s*(\d+)", str(exc))
        message = re.sub(r"\s*\(line:.*\)$", "", str(exc))
        raise Unreadable(message, *(int(g) for g in where.groups())) if where else Unreadable(message) from None
    except ConfigException as exc:
        raise Unreadable(str(exc)) from None
    if not isinstance(tree, ConfigTree):
        raise Unreadable("a vault holds an object of keys, not a list", 1, 1)
    return json.loads(json.dumps(tree.as_plain_ordered_dict()))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(exc.msg, exc.lineno, exc.colno) from None


def _yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_YAML_LOADER)  # the safe loader (C or Python)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.problem, exc.context) if p) or "not valid YAML"
        raise Unreadable(message, mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise Unreadable(str(exc)) from None


def parse(fmt: str, text: str) -> dict[str, Any]:
    """The configuration `text` holds as a tree of plain values (an empty text is an empty configuration).
    Raises Unreadable."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    if not text.strip():
        return {}
    tree = {"json": _json, "yaml": _yaml, "hocon": _hocon}[fmt](text)
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise Unreadable(f"a vault holds an object of keys, not {type(tree).__name__}", 1, 1)
    try:
        json.dumps(tree)
    except (TypeError, ValueError):  # YAML dates and non-string keys: not a configuration a job can read back
        raise Unreadable("keys must be text and values text, numbers, booleans, null, lists or objects") from None
    return tree


def format_of_filename(filename: str | None) -> str | None:
    """The format a file's extension names (.json, .yaml/.yml, .conf/.hocon), or None."""
    if not filename or "." not in filename:
        return None
    return EXTENSIONS.get(filename[filename.rfind("."):].lower())
