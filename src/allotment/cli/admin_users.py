"""`allot admin users|show-user|add-user|update-user|deactivate-user|activate-user|unlock-user|import-users`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from allotment.cli.client import ApiError, Client, CliError, segment
from allotment.cli.inputs import confirm, prompt_new_password, read_stdin_secret
from allotment.cli.output import console, emit_json, show, table, when, yes_no

USER_COLUMNS = [("username", "USERNAME"), ("email", "E-MAIL"), ("full_name", "FULL NAME"), ("active", "ACTIVE"),
                ("password_change", "PASSWORD CHANGE"), ("policy", "RESOURCE POLICY"), ("created", "CREATED")]
IMPORT_COLUMNS = [("row", "ROW"), ("username", "USERNAME"), ("status", "STATUS"), ("errors", "ERRORS")]


def user_row(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "username": user.get("username"), "email": user.get("email"), "full_name": user.get("full_name"),
        "active": yes_no(user.get("is_active")), "password_change": "needed" if user.get("need_password_change") else "",
        "policy": user.get("resource_policy"), "created": when(user.get("created_at")),
    }


def import_row(row: dict[str, Any]) -> dict[str, Any]:
    errors = row.get("errors") or []
    text = "; ".join(e if isinstance(e, str) else f"{e.get('field')}: {e.get('message')}" for e in errors)
    return {"row": row.get("row"), "username": row.get("username"), "status": row.get("status"), "errors": text}


def import_report(report: Any) -> list[dict[str, Any]]:
    """The per-row report of an import: 200 (all created), 207 (a row failed), or an older server's 422."""
    return list(report.get("rows") or []) if isinstance(report, dict) else []


def register(admin: typer.Typer) -> None:
    @admin.command("users")
    def list_users(
        inactive: bool = typer.Option(False, "--inactive", help="only deactivated users"),
        all_: bool = typer.Option(False, "--all", help="active and deactivated users"),
        search: str = typer.Option(None, "--search", help="substring of the e-mail or username"),
        sort: str = typer.Option("username", "--sort", help="username, -username, email, created_at, -created_at"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """List users (active ones unless --inactive or --all)."""
        if inactive and all_:
            raise typer.BadParameter("give --inactive or --all, not both")
        params: dict[str, Any] = {"sort": sort}
        if not all_:
            params["active"] = "false" if inactive else "true"
        if search:
            params["search"] = search
        users = Client().get_all("users", params)
        if json_:
            emit_json(users)
        else:
            table([user_row(u) for u in users], USER_COLUMNS, empty="no users match")

    @admin.command("show-user")
    def show_user(user: str = typer.Argument(..., help="username, e-mail or id"),
                  json_: bool = typer.Option(False, "--json")) -> None:
        """One user with groups, cluster roles and number of credentials."""
        data = Client().get(f"users/{segment(user)}")
        if not json_:
            data = {**data, "groups": ", ".join(data.get("groups") or []),
                    "cluster_roles": ", ".join(f"{c}={r}" for c, r in (data.get("cluster_roles") or {}).items())}
        show(data, json_)

    @admin.command("add-user")
    def add_user(
        email: str = typer.Argument(...),
        username: str = typer.Argument(...),
        full_name: str = typer.Option(None, "--full-name"),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
        need_password_change: bool = typer.Option(False, "--need-password-change",
                                                  help="mark that the user should change the password"),
        resource_policy: str = typer.Option(None, "--resource-policy"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create a user (asks for the password on a terminal unless --password-stdin)."""
        password = read_stdin_secret("password") if password_stdin else prompt_new_password()
        body: dict[str, Any] = {"email": email, "username": username, "password": password,
                                "need_password_change": need_password_change}
        if full_name is not None:
            body["full_name"] = full_name
        if resource_policy is not None:
            body["resource_policy"] = resource_policy
        created = Client().post("users", json=body)
        if json_:
            emit_json(created)
        else:
            console.print(f"Added user {created['username']} <{created.get('email')}>", highlight=False)

    @admin.command("update-user")
    def update_user(
        user: str = typer.Argument(..., help="username, e-mail or id"),
        username: str = typer.Option(None, "--username", help="new username"),
        full_name: str = typer.Option(None, "--full-name"),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="read a new password from stdin"),
        need_password_change: bool = typer.Option(None, "--need-password-change/--no-need-password-change"),
        resource_policy: str = typer.Option(None, "--resource-policy"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Change a user's username, full name, password, password-change flag or resource policy.

        The e-mail cannot change: it is the account's identity.
        """
        body: dict[str, Any] = {}
        if username is not None:
            body["username"] = username
        if full_name is not None:
            body["full_name"] = full_name
        if need_password_change is not None:
            body["need_password_change"] = need_password_change
        if resource_policy is not None:
            body["resource_policy"] = resource_policy
        if password_stdin:
            body["password"] = read_stdin_secret("password")
        if not body:
            raise typer.BadParameter("nothing to change: give --username, --full-name, --password-stdin, "
                                     "--[no-]need-password-change or --resource-policy")
        updated = Client().patch(f"users/{segment(user)}", json=body)
        if json_:
            emit_json(updated)
        else:
            fields = ", ".join("password" if k == "password" else k.replace("_", " ") for k in body)
            console.print(f"Updated {updated['username']}: {fields}", highlight=False)

    @admin.command("deactivate-user")
    def deactivate_user(
        user: str = typer.Argument(..., help="username, e-mail or id"),
        yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
        stop_jobs: bool = typer.Option(False, "--stop-jobs", help="cancel the user's unfinished jobs (the engines "
                                                                 "stop the running ones)"),
    ) -> None:
        """Deactivate a user: they cannot log in, all their credentials are revoked and their sessions end.

        Refused while the user has admitted or running jobs (they are listed), unless --stop-jobs cancels them.
        Jobs still waiting for admission are cancelled either way. Their job records, folders and usage stay.
        Reactivating does not bring the credentials back.
        """
        also = " and every unfinished job of theirs cancelled" if stop_jobs else ""
        confirm(f"Deactivate {user}? All of their credentials are revoked{also}.", yes, f"{user} was not deactivated")
        result = Client().post(f"users/{segment(user)}/deactivate", params={"stop_jobs": "true"} if stop_jobs else None)
        name = result.get("username", user) if isinstance(result, dict) else user
        cancelled = result.get("jobs_cancelled") or [] if isinstance(result, dict) else []
        stopped = f"; cancelled jobs {', '.join(map(str, cancelled))}" if cancelled else ""
        console.print(f"Deactivated {name}: credentials revoked, sessions ended{stopped}", highlight=False)

    @admin.command("activate-user")
    def activate_user(user: str = typer.Argument(..., help="username, e-mail or id")) -> None:
        """Reactivate a user. Credentials revoked on deactivation stay revoked."""
        result = Client().post(f"users/{segment(user)}/activate")
        name = result.get("username", user) if isinstance(result, dict) else user
        console.print(f"Activated {name} (earlier credentials stay revoked; create new ones with "
                      f"`allot credentials create --user {name}`)", highlight=False)

    @admin.command("unlock-user")
    def unlock_user(user: str = typer.Argument(..., help="username, e-mail or id")) -> None:
        """Lift a password sign-in lock (after repeated wrong passwords) before it ends by itself. Audited."""
        result = Client().post(f"users/{segment(user)}/unlock")
        name = result.get("username", user) if isinstance(result, dict) else user
        console.print(f"Unlocked {name}: password sign-in works again", highlight=False)

    @admin.command("import-users")
    def import_users(
        file: Annotated[Path, typer.Argument(
            exists=True, dir_okay=False, readable=True,
            help="CSV with columns email,username,password,full_name[,need_password_change]")],
        continue_on_error: bool = typer.Option(False, "--continue-on-error",
                                               help="import the good rows even when some are bad"),
        json_: bool = typer.Option(False, "--json"),
    ) -> None:
        """Create users from a CSV file and print a per-row report. A bad row imports nothing by default."""
        client = Client()
        params = {"continue_on_error": "true" if continue_on_error else "false"}
        try:
            report = client.post("users/import", params=params, content=file.read_bytes(),
                                 headers={"Content-Type": "text/csv"})
        except ApiError as exc:
            if not import_report(exc.body):
                raise
            report = exc.body  # older servers refuse a file with a bad row with 422, carrying the same report
        rows = import_report(report)
        if json_:
            emit_json(report)
        else:
            table([import_row(r) for r in rows], IMPORT_COLUMNS)
            console.print(f"created {report.get('created', 0)}, failed {report.get('failed', 0)}", highlight=False)
        if report.get("failed") and not continue_on_error:
            raise CliError(f"{report['failed']} bad row(s) in {file.name}: nothing imported "
                           f"(fix them, or pass --continue-on-error to import the good rows)")
        if report.get("failed"):
            raise CliError(f"{report['failed']} row(s) of {file.name} failed; the other rows were imported")
