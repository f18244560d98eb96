"""Settings from environment variables (ALLOT_*) and an optional allot.toml."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALLOT_", toml_file="allot.toml", extra="ignore")

    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite under data_dir when unset")
    bind: str = "127.0.0.1:8080"
    data_dir: Path = Path("var")
    secret_key: str | None = None
    bootstrap_admin_email: str | None = None
    bootstrap_admin_username: str | None = None
    bootstrap_admin_password: str | None = None
    # The first start creates the quota `default` over the default cluster's default pool, bound to everyone with
    # access to that cluster, so that the first job needs no setup; off for an operator who lays out quotas first.
    bootstrap_default_quota: bool = True
    # Scheduler loop: it reacts to events and also wakes up on this tick.
    scheduler_enabled: bool = True
    # Where the loop runs: "process", a process of its own beside the API (scheduler/process.py: the loop and the
    # request threads then use a core each); "thread", a thread of the API's process; "auto", a process under
    # `allot server` and a thread when the app is embedded in another ASGI server or a test.
    scheduler_mode: Literal["auto", "process", "thread"] = "auto"
    scheduler_tick_s: float = 1.0
    # A job queued this long reserves what it waits for so that smaller jobs stop overtaking it (None: never).
    scheduler_starvation_age_s: float | None = 3600.0
    # A job may preempt others only after it has been queued this long: capacity that frees by itself within the delay
    # is not bought with killed work (YuniKorn's preemption delay; 0: preempt at once, as Kueue does).
    scheduler_preemption_delay_s: float = Field(default=1.0, ge=0)
    # Bound on admissions per cycle (keeps one cycle's transaction small); None: no bound.
    scheduler_max_admissions_per_cycle: int | None = 5000
    # Hour budgets (users' quotas, quota-tree budgets): in safe mode a job starts only when its request times its
    # time limit fits in what is left; jobs without a time limit are measured against this default (None: such a
    # job waits only once a budget is spent).
    budget_safe_mode: bool = True
    budget_default_time_limit_s: int | None = Field(default=None, ge=1)
    # A running job whose budget is spent is stopped once the budget has been spent this long (Slurm, Neu.ro);
    # budget_stop_running off lets it finish, its overage showing in the budget's spent / left.
    budget_stop_running: bool = True
    # A new job whose budget is already spent: "wait" (queued with reason budget_exhausted) or "refuse" (409).
    budget_when_spent: Literal["wait", "refuse"] = "wait"
    budget_grace_s: float = Field(default=60.0, ge=0)
    # Simulated clusters: virtual nodes from this YAML file (see backends/simulated.py); nodes may also be
    # registered through the API (POST /clusters/{cluster}/nodes).
    simulated_nodes: Path | None = None
    # How long the scheduler waits for a remote engine's (Slurm's, Ray's) answer before that cluster counts as
    # unreachable; the call goes on in the background and the loop serves the other clusters meanwhile.
    engine_answer_s: float = Field(default=5.0, gt=0, le=300)
    # The cluster whose nodes are this host as the local engine reports it (GPUs through NVML, cores, memory);
    # other clusters with the local engine run their jobs here too but get their nodes through the API.
    local_cluster: str = "local"
    # Local engine isolation (backends/sandbox.py). Jobs' working directories: <this>/<job id>; default
    # <data_dir>-work beside the data directory (never inside it: the data directory is 0700).
    local_work_dir: Path | None = None
    # When the server runs as root, each job runs under a uid of its own, local_job_uid_base + job id (modulo
    # local_job_uid_count), unless its owner's username is mapped to an OS account here (JSON in the environment:
    # ALLOT_LOCAL_ACCOUNTS='{"alice": "alice"}'), or local_job_user names one account for every other job.
    local_accounts: dict[str, str] = Field(default_factory=dict)
    local_job_user: str | None = None
    local_job_uid_base: int = Field(default=2_100_000_000, ge=1000, le=4_000_000_000)
    local_job_uid_count: int = Field(default=1_000_000, ge=1, le=100_000_000)
    # Login protection (Backend.AI style): this many wrong passwords lock an account's password sign-in for this long
    # (credentials keep working; a platform admin can unlock it).
    login_max_failures: int = 5
    login_lock_minutes: int = 20
    # Per source (client address), in memory: failed password sign-ins allowed at once, and how many more a minute
    # (a token bucket; a successful sign-in gives its attempt back). Past it: 429 with Retry-After.
    login_failures_burst: int = Field(default=10, ge=1)
    login_failures_per_minute: float = Field(default=5.0, gt=0)
    # argon2 verifications at a time (None: one less than the CPU count, at least 1), and how long a sign-in waits
    # for its turn before it gets 429: a flood of sign-ins then cannot take the CPU from the rest of the API.
    password_checks_concurrency: int | None = Field(default=None, ge=1)
    password_check_wait_s: float = Field(default=1.0, ge=0)
    # Per source: failed credential (access key + secret) authentications allowed at once, and how many more a minute.
    credential_failures_burst: int = Field(default=20, ge=1)
    credential_failures_per_minute: float = Field(default=20.0, gt=0)
    session_hours: int = 12
    # Jobs' output files are deleted this many days after their job ended (workloads/logs.py, checked hourly);
    # 0 keeps them for ever.
    job_log_retention_days: int = Field(default=30, ge=0, le=36500)
    log_level: str = "info"
    # The console's third-party JS and CSS (npm packages); default: node_modules of the source checkout.
    vendor_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("bind")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ValueError("bind must be HOST:PORT, for example 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'allotment.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def ensure_secret_key(self) -> str:
        """Return the secret key, generating and persisting one under data_dir on first start."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            self.secret_key = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.secret_key = secrets.token_urlsafe(48)
            path.write_text(self.secret_key)
            path.chmod(0o600)
        return self.secret_key
