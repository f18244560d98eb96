"""`allot server` and `allot db upgrade`: the only commands that touch the database directly."""

from __future__ import annotations

import logging

import typer

from allotment.cli.client import CliError


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database schema.", no_args_is_help=True)
    app.add_typer(db, name="db")

    @app.command()
    def server() -> None:
        """Start the API, console, scheduler and backends (settings from ALLOT_* and allot.toml)."""
        import uvicorn

        from allotment.api.app import create_app
        from allotment.migrate import SchemaOutdated
        from allotment.settings import Settings

        settings = Settings()
        if settings.scheduler_mode == "auto":  # a server of its own: the loop gets a process (and a core) of its own
            settings = settings.model_copy(update={"scheduler_mode": "process"})
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        app_ = create_app(settings)
        from allotment.scheduler.gcpause import tune_for_server

        tune_for_server()
        try:
            print(f"allotment serving on http://{settings.host}:{settings.port}", flush=True)
            uvicorn.run(app_, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                        access_log=False)
        except SchemaOutdated as exc:
            raise CliError(str(exc)) from exc

    @db.command("upgrade")
    def upgrade(revision: str = typer.Argument("head")) -> None:
        """Apply schema migrations up to REVISION (default: the latest)."""
        from allotment.migrate import upgrade as run_upgrade
        from allotment.settings import Settings

        settings = Settings()
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        run_upgrade(settings.effective_database_url, revision)
        print(f"database at revision {revision}")
