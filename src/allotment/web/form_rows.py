"""Forms that edit lists (a quota's resource entries, the siblings of a scale, a profile's pools): the rows are
posted as `PREFIX.I.FIELD` inputs, blank rows are dropped before the service sees the list, and the service's field
errors (`PREFIX.J.FIELD`, J counting only the rows it was given) are put back under the row the user filled in.

Also the one place that turns a request model's validation errors (the API's pydantic bodies, which the console
builds from its forms so both check the same things) into the messages under each input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import ValidationError

from allotment.errors import FieldError


def rows_of(form: dict[str, str], prefix: str, fields: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """(form index, {field: text}) for every `PREFIX.I.*` row of the form, by index."""
    wanted = set(fields)
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        head, _, rest = key.partition(".")
        index, _, name = rest.partition(".")
        if head == prefix and index.isdigit() and len(index) < 5 and name in wanted:
            rows.setdefault(int(index), {})[name] = value.strip()
    return sorted(rows.items())


def kept(rows: list[tuple[int, dict[str, str]]], keep: Callable[[dict[str, str]], bool]
         ) -> tuple[list[dict[str, str]], list[int]]:
    """The rows to send and, for each, its index in the form."""
    sent = [(i, row) for i, row in rows if keep(row)]
    return [row for _, row in sent], [i for i, _ in sent]


def remap(errors: Iterable[FieldError], prefix: str, form_index: list[int]) -> list[FieldError]:
    """Errors about the J-th row sent, renamed to the row's index in the form."""
    out = []
    for error in errors:
        head, _, rest = error.field.partition(".")
        index, _, name = rest.partition(".")
        if head == prefix and index.isdigit() and int(index) < len(form_index):
            field = f"{prefix}.{form_index[int(index)]}" + (f".{name}" if name else "")
            out.append(FieldError(field, error.message))
        else:
            out.append(error)
    return out


def model_errors(exc: ValidationError) -> list[FieldError]:
    """A request model's errors as the API words them (api/problems.py): field path and message."""
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err.get("loc", ())) or "request"
        out.append(FieldError(path, str(err.get("msg", "invalid value")).removeprefix("Value error, ")))
    return out


def by_field(errors: Iterable[FieldError]) -> dict[str, list[str]]:
    """Messages by input name (a message about a whole row is under `PREFIX.I`)."""
    grouped: dict[str, list[str]] = {}
    for error in errors:
        grouped.setdefault(error.field, []).append(error.message)
    return grouped


def failure(exc: Exception, conflict_field: str | None = None) -> list[FieldError] | None:
    """The messages a form shows for a refused request: a request model's errors, a service's field errors, or a
    conflict without a field (a name already taken) put under `conflict_field`. None: not a form's error (the error
    page shows it)."""
    if isinstance(exc, ValidationError):
        return model_errors(exc)
    errors = list(getattr(exc, "errors", None) or [])
    if errors:
        return errors
    if conflict_field and getattr(exc, "status", None) == 409:
        return [FieldError(conflict_field, str(getattr(exc, "detail", exc)))]
    return None


def number(text: str, kind: type = float):
    """A form's number as the API's JSON would carry it; text that is no number goes to the model as it is, which
    refuses it in its own words."""
    try:
        value = kind(text)
    except ValueError:
        return text
    return value
