"""What keeps a local job away from the server: its account, environment, working directory and limits.

A job is untrusted code. On the local engine it never sees the server's environment, secret key, data directory,
database or other jobs' files. Two ways, chosen by how the server runs (`Isolation.for_host`):

- **The server runs as root: a uid of the job's own** (mode "account"). Unless a mapping or a configured account
  says otherwise, each job runs under a numeric uid and gid of its own, `local_job_uid_base + job id` (modulo
  `local_job_uid_count`), with no supplementary groups: like systemd's DynamicUser, no account needs creating, and
  no two jobs share a uid, so a job cannot read, signal or trace another's processes or files, whoever owns them.
  `local_accounts` maps an allotment username to an OS account (its uid, gid and groups: the owner's own files,
  say on a shared file system); `local_job_user` runs every other job under one named account instead (simpler to
  audit, but jobs sharing it can reach each other's files). The data directory is made 0700 (and the secret key
  and database 0600) at start, so none of these accounts can read it; job logs and run records live inside it and
  are written by the root wrapper (backends/jobrun.py), which keeps its lock and records its exit code as root and
  drops privileges only in the command's process, just before exec. So crash recovery works unchanged.
  A dynamic uid's working directory is handed back to root (0700) when its run ends: a later job that reuses the uid
  (after `local_job_uid_count` jobs) cannot read what it left.
- **The server is not root: bubblewrap** (mode "bwrap", Debian's `bubblewrap`, unprivileged user namespaces). The job
  runs as the server's user in its own mount, PID and IPC namespaces: the file system read-only, with empty tmpfs
  over the data directory, the working-directory root (other jobs' directories), the server's home and /tmp, and
  only its own working directory writable. A process cannot drop to another uid without privileges, so hiding is
  the only way to keep the server's files from it. Without bwrap (or user namespaces) the engine refuses to start:
  running untrusted jobs as the server's user, next to its secret key, is never a fallback.

In both modes the command starts with a clean environment: what the job declared (core/jobenv.py keeps the loader's
variables out) plus ALLOT_JOB_ID, CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES, PATH, HOME (its working
directory), USER/LOGNAME and LANG; its umask is 077. Its working directory is `<work root>/<job id>` (kept across
the job's runs, so a requeued job finds its checkpoints), outside the data directory: by default
`<data dir>-work` beside it.

Storage folders (storage/mounts.py) are bind-mounted into the job at `<working directory>/<target>` (default
`folders/<name>`), read-only where the permission says so: under bubblewrap by its --bind/--ro-bind; with accounts of
their own by the root wrapper in a mount namespace of the command's own, before it drops to the job's uid
(backends/jobrun.py). Files a job writes there belong to the job's uid, with its umask. ALLOT_FOLDER_<NAME> holds
each mounted folder's path.

Limits (backends/cgroups.py): CPU and memory requests become cgroup limits where the host lets the server create
cgroups; otherwise memory falls back to RLIMIT_DATA and CPU is not limited (see that module for why).
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("allotment.backends.local")

ACCOUNT = "account"
BWRAP = "bwrap"
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class IsolationUnavailable(RuntimeError):
    """This host offers no way to keep jobs from the server's files (not root, and no usable bubblewrap)."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    personal: bool = False  # a mapped account of the owner: its working directory stays its own after the run


def _named(name: str, personal: bool) -> Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise IsolationUnavailable(f"no OS account {name!r} (local engine settings)") from None
    if entry.pw_uid == 0:
        raise IsolationUnavailable(f"jobs may not run as {name!r}: it is root")
    groups = tuple(g for g in os.getgrouplist(name, entry.pw_gid) if g != 0) if personal else ()
    return Account(name, entry.pw_uid, entry.pw_gid, groups, personal)


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


@dataclass
class Isolation:
    mode: str
    data_dir: Path
    work_root: Path
    job_user: str | None = None
    accounts: dict[str, str] = field(default_factory=dict)
    uid_base: int = 2_100_000_000
    uid_count: int = 1_000_000
    bwrap: str | None = None
    hidden: tuple[Path, ...] = ()  # more to hide under bwrap: the server's home and settings file

    @classmethod
    def for_host(cls, data_dir: Path, work_root: Path | None = None, job_user: str | None = None,
                 accounts: dict[str, str] | None = None, uid_base: int = 2_100_000_000, uid_count: int = 1_000_000,
                 settings_file: Path | None = None) -> Isolation:
        data_dir = Path(data_dir).resolve()
        work_root = work_root_of(data_dir, work_root)
        if _inside(work_root, data_dir) or _inside(data_dir, work_root):
            raise IsolationUnavailable(f"the jobs' working directories ({work_root}) and the data directory "
                                       f"({data_dir}) must not contain one another")
        if os.geteuid() == 0:
            iso = cls(ACCOUNT, data_dir, work_root, job_user, dict(accounts or {}), uid_base, uid_count)
            if job_user:
                _named(job_user, False)  # fail at start, not at the first job
            return iso
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise IsolationUnavailable("the local engine needs bubblewrap (apt install bubblewrap) when the server "
                                       "does not run as root: jobs must not run beside the server's secrets")
        hidden = [Path(p).resolve() for p in (os.path.expanduser("~"), settings_file) if p]
        iso = cls(BWRAP, data_dir, work_root, bwrap=bwrap, hidden=tuple(p for p in hidden if p.exists()))
        iso.check_bwrap()
        return iso

    # -- the host's side ---------------------------------------------------------------------------------------
    def check_bwrap(self) -> None:
        import subprocess

        probe = subprocess.run([self.bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-ipc", "true"],
                               capture_output=True, text=True, timeout=30, check=False, env={"PATH": SAFE_PATH})
        if probe.returncode != 0:
            raise IsolationUnavailable(f"bubblewrap cannot make a sandbox here (user namespaces disabled?): "
                                       f"{probe.stderr.strip()[:300]}")

    def tighten(self) -> None:
        """The data directory 0700 and its secrets 0600, owned by the server: no job account can read them."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.data_dir.stat().st_uid != os.geteuid():
            log.warning("local engine: the data directory %s is not owned by the server's user", self.data_dir)
        os.chmod(self.data_dir, 0o700)
        for name in ("secret_key", "allotment.db", "allotment.db-wal", "allotment.db-shm", "allotment.db-journal"):
            path = self.data_dir / name
            if path.exists() and not path.is_symlink():
                os.chmod(path, stat.S_IMODE(path.stat().st_mode) & 0o600)
        self.work_root.mkdir(parents=True, exist_ok=True)
        # Traversable, not listable: a job reaches its own directory by name, and sees no other job's.
        os.chmod(self.work_root, 0o711 if self.mode == ACCOUNT else 0o700)

    def account(self, job_id: int, owner: str | None) -> Account | None:
        """The account a job runs as (None under bwrap: the server's own, hidden from)."""
        if self.mode != ACCOUNT:
            return None
        if owner is not None and owner in self.accounts:
            return _named(self.accounts[owner], True)
        if self.job_user:
            return _named(self.job_user, False)
        uid = self.uid_base + int(job_id) % self.uid_count
        return Account(f"job-{int(job_id)}", uid, uid)

    def workdir(self, job_id: int, account: Account | None) -> Path:
        """The job's working directory, created (again) for this run and owned by its account, 0700."""
        path = self.work_root / str(int(job_id))
        path.mkdir(mode=0o700, exist_ok=True)
        if path.is_symlink():  # never follow what a job may have put here
            raise IsolationUnavailable(f"{path} is a symbolic link")
        if account is not None:
            os.chown(path, account.uid, account.gid)
        os.chmod(path, 0o700)
        return path

    def confinement(self, job_id: int, owner: str | None, mounts: tuple[dict, ...] = ()) -> dict:
        """What the wrapper applies to the command (launch.json's `confine`; no secrets in it). `mounts`: storage
        folders ({source: a directory of the server, target: a path relative to the working directory, read_only}),
        bind-mounted at <working directory>/<target> (see folder_mounts)."""
        account = self.account(job_id, owner)
        work = self.workdir(job_id, account)
        binds = folder_mounts(work, mounts)
        spec: dict = {"workdir": str(work), "user": account.name if account else pwd.getpwuid(os.geteuid()).pw_name}
        if account is not None:
            spec.update(uid=account.uid, gid=account.gid, groups=list(account.groups),
                        retire_workdir=not account.personal)
            if binds:
                spec["mounts"] = binds  # the wrapper mounts them as root, before dropping to the job's uid
        else:
            spec["argv"] = self.bwrap_argv(work, binds)
        return spec

    def bwrap_argv(self, work: Path, binds: list[dict] | None = None) -> list[str]:
        """bubblewrap's arguments before the command. /dev is the host's (GPUs are character devices there)."""
        argv = [self.bwrap, "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc",
                "--tmpfs", "/tmp", "--tmpfs", "/dev/shm", "--unshare-pid", "--unshare-ipc"]
        for hidden in sorted({self.data_dir, self.work_root, *self.hidden}, key=lambda p: len(p.parts)):
            if hidden.is_dir():
                argv += ["--tmpfs", str(hidden)]
            else:
                argv += ["--ro-bind", "/dev/null", str(hidden)]
        argv += ["--bind", str(work), str(work)]
        for bind in binds or ():  # after the working directory: their mount points are inside it
            argv += ["--ro-bind" if bind["read_only"] else "--bind", bind["source"], bind["target"]]
        argv += ["--chdir", str(work), "--"]
        return argv


def folder_variable(folder: str) -> str:
    """The environment variable that names a mounted folder's path to the job: ALLOT_FOLDER_<NAME>, upper case,
    other characters as _ (every engine that mounts folders sets it)."""
    return "ALLOT_FOLDER_" + re.sub(r"[^A-Z0-9]", "_", str(folder).upper())


def folder_mounts(work: Path, mounts: tuple[dict, ...]) -> list[dict]:
    """Storage folders a job mounts, at known paths: <working directory>/<target> (by default folders/<name>, so
    $HOME/folders/<name>), read-only where the job's permission on the folder is read-only. The source must be a
    directory of the server (a local storage host); a target may not leave the working directory."""
    binds = []
    for mount in mounts:
        source = Path(mount["source"])
        target = (work / mount["target"]).resolve() if not Path(mount["target"]).is_absolute() else None
        if target is None or not _inside(target, work) or target == work:
            raise IsolationUnavailable(f"folder mount target {mount['target']!r} is not inside the working directory")
        if not source.is_dir():
            raise IsolationUnavailable(f"folder {mount.get('folder', source.name)}: its directory {source} is missing")
        binds.append({"source": str(source), "target": str(target), "read_only": bool(mount.get("read_only"))})
    return binds


def work_root_of(data_dir: Path, work_root: Path | None) -> Path:
    """Where the jobs' working directories are: ALLOT_LOCAL_WORK_DIR, else beside the data directory."""
    data_dir = Path(data_dir)
    return Path(work_root).resolve() if work_root else data_dir.with_name(data_dir.name + "-work")


def job_environment(launch_env: dict[str, str], job_id: int, devices: list[int], workdir: str | None,
                    user: str | None, renumber_cuda: bool = False) -> dict[str, str]:
    """The command's whole environment: nothing of the server's (see the module docstring). `renumber_cuda`: the
    run's devices cgroup lets it open only its GPUs, and CUDA numbers the GPUs it can open from 0, so
    CUDA_VISIBLE_DEVICES counts from 0 (NVIDIA_VISIBLE_DEVICES, read by container runtimes on the host, keeps the
    host's indices)."""
    from allotment.core import jobenv

    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}
    env.update(jobenv.usable(launch_env))  # a job may set its own PATH or LANG
    if workdir:
        env.setdefault("HOME", workdir)
    if user:
        env.setdefault("USER", user)
        env.setdefault("LOGNAME", user)
    env["ALLOT_JOB_ID"] = str(int(job_id))
    visible = ",".join(str(d) for d in devices)
    # Empty: no GPU at all, rather than every GPU of the host.
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(devices))) if renumber_cuda else visible
    env["NVIDIA_VISIBLE_DEVICES"] = visible or "void"
    return env
