"""What the About page and `allot --version` report: this server's version, its execution engines with the versions
they speak or load, and the database it runs on (DKube's About). Reads only what this process has at hand: no
engine is contacted, so the page answers at once even when a cluster's engine is down."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
from pathlib import Path

from sqlalchemy.orm import Session

from allotment import __version__
from allotment.backends.slurm_client import API_VERSION as SLURM_API_VERSION

ENGINES = {
    "local": "runs commands on the server's host, isolated per job",
    "simulated": "runs nothing; ends each job after its declared duration (what-if runs, demos)",
    "slurm": "submits to Slurm through slurmrestd",
    "ray": "submits to a Ray cluster's Jobs API",
}
CONSOLE_PACKAGES = ("htmx.org", "@picocss/pico", "chart.js")


def package_version(name: str) -> str | None:
    if importlib.util.find_spec(name) is None:
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def engine_versions() -> dict[str, str]:
    """engine -> the version this server uses with it."""
    ray = package_version("ray")
    return {
        "local": f"built in (Python {platform.python_version()}, {platform.system()} {platform.release()})",
        "simulated": "built in",
        "slurm": f"slurmrestd API {SLURM_API_VERSION}",
        "ray": f"Ray {ray} client" if ray else "not installed (pip install 'allotment[ray]')",
    }


def database(session: Session) -> dict[str, str]:
    """The database's kind and the server's version as the driver reports it."""
    dialect = session.get_bind().dialect
    version = ".".join(str(part) for part in (dialect.server_version_info or ()))
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL", "mariadb": "MariaDB"}
    return {"kind": names.get(dialect.name, dialect.name), "version": version or "unknown", "driver": dialect.driver}


def console_packages(vendor_dir: Path) -> dict[str, str]:
    """The console's npm packages as installed (their package.json), for what the browser is served."""
    out = {}
    for name in CONSOLE_PACKAGES:
        try:
            out[name] = json.loads((vendor_dir / name / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            out[name] = "missing"
    return out


def version_line() -> str:
    return f"allot {__version__} (Python {platform.python_version()})"
