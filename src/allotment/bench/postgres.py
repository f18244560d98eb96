"""A throwaway PostgreSQL server for `allot bench scenario --database postgresql`.

Found and started the way the test suite's scripts/postgres.sh does it (Debian's server binaries under
/usr/lib/postgresql/VERSION/bin, newest first; `initdb` with trust authentication, a unix socket in a temporary
directory, no TCP), but with the server's default durability: `fsync`, `synchronous_commit` and `full_page_writes`
stay on, as in production, so the benchmark measures what users run. The server is stopped and its directory removed
on exit.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

BIN_GLOB = "/usr/lib/postgresql"
PORT = 55433  # not the test suite's 55432: a benchmark and the suite may run side by side
DATABASE = "allot_bench"
USER = "allot"


class PostgresError(RuntimeError):
    pass


def find_bindir(root: str = BIN_GLOB) -> Path | None:
    """The newest installed server's binaries (the directory holding initdb), or None."""
    base = Path(root)
    if not base.is_dir():
        return None
    versions = [d for d in base.iterdir() if (d / "bin" / "initdb").is_file()]

    def key(d: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", d.name)) or (0,)

    return max(versions, key=key) / "bin" if versions else None


class ThrowawayPostgres:
    """`with ThrowawayPostgres() as pg: pg.url` is a SQLAlchemy URL of an empty database on a fresh server."""

    def __init__(self, port: int = PORT, bindir: Path | None = None) -> None:
        self.port = port
        self.bindir = bindir or find_bindir()
        self.dir: Path | None = None
        self.url = ""
        self.version = ""

    def _as_server_user(self) -> dict:
        """initdb refuses to run as root: as root the server runs as the `postgres` account (Debian's package
        creates it), which must own its directory."""
        if os.geteuid() != 0:
            return {}
        try:
            account = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresError("running as root needs the `postgres` account (Debian's postgresql package creates "
                                "it) to start a throwaway PostgreSQL") from exc
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> str:
        done = subprocess.run([str(self.bindir / args[0]), *args[1:]], check=False, capture_output=True, text=True,
                              timeout=120, **self._as_server_user())
        if done.returncode != 0:
            raise PostgresError(f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
        return done.stdout

    def __enter__(self) -> Self:
        if self.bindir is None:
            raise PostgresError("no PostgreSQL server found under /usr/lib/postgresql (install Debian's postgresql "
                                "package, as `make test` does, or give --url of a running allotment server)")
        self.dir = Path(tempfile.mkdtemp(prefix="allot-bench-pg-"))
        self.dir.chmod(0o755)
        user = self._as_server_user()
        if user:
            os.chown(self.dir, user["user"], user["group"])
        try:
            self._run("initdb", "-D", str(self.dir / "data"), "-U", USER, "--auth=trust", "-E", "UTF8",
                      "--no-locale")
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                      "-o", f"-k {self.dir} -p {self.port} -c listen_addresses='' -c max_connections=100", "start")
            self._run("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", USER, DATABASE)
            found = re.search(r"(\d+(?:\.\d+)*)", self._run("postgres", "--version"))
            self.version = f"PostgreSQL {found.group(1) if found else '(unknown version)'}"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.url = f"postgresql+psycopg://{USER}@/{DATABASE}?host={self.dir}&port={self.port}"
        return self

    @property
    def pid(self) -> int | None:
        """The server's postmaster process (its backends are its children), or None when it is not running."""
        try:
            return int((self.dir / "data" / "postmaster.pid").read_text().split()[0]) if self.dir else None
        except (OSError, ValueError, IndexError):
            return None

    def settings(self) -> dict[str, str]:
        """The durability settings the server runs with (the benchmark's report names them)."""
        import psycopg

        with psycopg.connect(host=str(self.dir), port=self.port, user=USER, dbname=DATABASE) as conn:
            return {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("fsync", "synchronous_commit", "full_page_writes")}

    def __exit__(self, *exc) -> None:
        if self.dir is None:
            return
        if (self.dir / "data" / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
            except (PostgresError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
