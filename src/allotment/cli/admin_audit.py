"""`allot admin audit` (filtered audit log) and `allot admin export users|credentials|audit` (CSV files)."""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from allotment.cli.client import Client, CliError
from allotment.cli.output import console, emit_json, table, when

AUDIT_COLUMNS = [("at", "AT"), ("actor", "ACTOR"), ("action", "ACTION"), ("target", "TARGET"), ("source", "FROM"),
                 ("changes", "CHANGES")]


class Export(str, Enum):
    users = "users"
    credentials = "credentials"
    audit = "audit"


def audit_params(actor: str | None, target: str | None, action: str | None, since: str | None,
                 until: str | None) -> dict[str, str]:
    given = {"actor": actor, "target": target, "action": action, "since": since, "until": until}
    return {k: v for k, v in given.items() if v}


def changes_text(changes: Any) -> str:
    """`field: before -> after` per changed field; `field=value` for what was created; else the raw JSON."""
    if not changes:
        return ""
    if not (isinstance(changes, dict) and set(changes) <= {"before", "after"}):
        return json.dumps(changes, default=str)
    before, after = changes.get("before") or {}, changes.get("after") or {}
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return json.dumps(changes, default=str)
    if not before or not after:  # created (only after) or removed (only before)
        return ", ".join(f"{k}={v}" for k, v in (after or before).items() if v is not None)
    return "; ".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in dict.fromkeys([*before, *after]))


def event_row(event: dict[str, Any]) -> dict[str, Any]:
    actor = event.get("actor") or ""
    if event.get("on_behalf_of"):
        actor = f"{actor} for {event['on_behalf_of']}"
    target = ":".join(str(p) for p in (event.get("target_type"), event.get("target")) if p)
    return {"at": when(event.get("at")), "actor": actor, "action": event.get("action"), "target": target,
            "source": event.get("source"), "changes": changes_text(event.get("changes"))}


def register(admin: typer.Typer) -> None:
    @admin.command("audit")
    def audit(
        actor: str = typer.Option(None, "--actor", help="who acted (username)"),
        target: str = typer.Option(None, "--target", help="what was acted on (name)"),
        action: str = typer.Option(None, "--action", help="action, for example user.create"),
        since: str = typer.Option(None, "--since", help="ISO time, for example 2025-01-31 or 2025-01-31T12:00Z"),
        until: str = typer.Option(None, "--until", help="ISO time"),
        limit: int = typer.Option(100, "--limit", min=1, help="at most this many events"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """The audit log: who did what to what, when and from where, with the changed fields."""
        events = Client().get_all("audit", audit_params(actor, target, action, since, until), limit=limit)
        if json_:
            emit_json(events)
        else:
            table([event_row(e) for e in events], AUDIT_COLUMNS, empty="no audit events match")

    @admin.command("export")
    def export(
        what: Annotated[Export, typer.Argument(help="users, credentials or audit")],
        output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write ('-' for stdout)")],
        actor: str = typer.Option(None, "--actor", help="audit only: who acted"),
        target: str = typer.Option(None, "--target", help="audit only: what was acted on"),
        action: str = typer.Option(None, "--action", help="audit only: the action"),
        since: str = typer.Option(None, "--since", help="audit only: ISO time"),
        until: str = typer.Option(None, "--until", help="audit only: ISO time"),
    ) -> None:
        """Write users, credentials (never secrets) or the audit log as CSV."""
        params = audit_params(actor, target, action, since, until)
        if params and what is not Export.audit:
            raise typer.BadParameter(f"--{next(iter(params))} filters only `export audit`")
        data = Client().raw("GET", f"exports/{what.value}.csv", params=params).content
        if str(output) == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return
        try:
            output.write_bytes(data)
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror}") from exc
        rows = max(len(list(csv.reader(io.StringIO(data.decode("utf-8", "replace"))))) - 1, 0)
        console.print(f"Wrote {what.value} to {output} ({rows} rows)", highlight=False)
