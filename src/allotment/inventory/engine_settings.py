"""A cluster's engine settings: what each backend accepts, their checks, how they are stored and shown.

- slurm: `rest_url` of slurmrestd with `rest_user` and `token` (a JWT: secret), or no URL and Slurm's commands
  (`sbatch`, `squeue`, `scancel` from `bin_dir`, with `slurm_conf` as SLURM_CONF when given); `log_dir` (required: where
  jobs write their output, on a filesystem the compute nodes share); `partitions` (pool -> partition; a pool not in
  the map goes to the partition its node is in, as backends/slurm.py decides), `default_partition`, `name_prefix`
  (each allotment sharing a Slurm cluster needs its own), `state_dir`, `work_dir` and `accounts` (allotment user ->
  the account their jobs run as, '*' for everyone else: slurmrestd's user-name header with a token of SlurmUser or root, or `sbatch --uid`
  from a server running as root; an unmapped owner's jobs run as the token's user). They are backends/slurm.py's
  SlurmConfig, which scheduler/engines.py builds from them.
- ray: `address` of the Ray Jobs API (secret: it may embed credentials), `resources` (pool -> the custom resource
  naming it on Ray's nodes) and `name_prefix` (of submission ids and the jobs' metadata: each allotment sharing a
  Ray head needs its own, or their orphan sweeps would stop each other's jobs).
- simulated: `nodes_file`, the virtual nodes (else the server's ALLOT_SIMULATED_NODES).
- simulated, slurm, ray: `min_gpu_share`, the smallest share of one GPU a job may ask for (0.01 .. 1, a divisor of
  one GPU in milli-GPU: 0.01, 0.05, 0.125, 0.25, 0.5, 1; default 0.01). An engine that shares GPUs coarsely (MIG
  slices, MPS) sets it, and a Slurm cluster, whose GRES cannot express a fraction of a GPU, sets 1. Submission refuses
  finer shares naming it, and the scheduler core is given it (SchedulerConfig.gpu_share_step).
- local: nothing; the local engine runs on this host under the server's own settings (shares of 0.01 GPU).

Plain values are stored as JSON on the cluster; secrets only sealed (sealing.py) and never shown back: the API
shows `{"set": true}` in their place. An update names only what changes: a setting left out is kept, `null` resets
it (a secret: clears it); maps are replaced whole. Changing the backend starts from empty settings.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, ValidationError, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.api.fields import KeyRules, SchemaRules, Text, _amount
from allotment.core import limits, names
from allotment.core.quantity import format_raw
from allotment.errors import FieldError, ValidationFailed
from allotment.inventory.models import Cluster
from allotment.inventory.sealing import SecretsUnreadable, seal, unseal

__all__ = ["EngineConfig", "EngineIn", "SecretsUnreadable", "engine_config", "public_settings"]

# Sizes of engine settings (the other limits are in core/limits.py).
MAX_URL = 2048
MAX_PATH = 1024
MAX_TOKEN = 8192  # slurmrestd's JWTs are a few hundred characters
MAX_ENGINE_NAME = 64  # partition, resource, user names and the job name prefix

SETTINGS: dict[str, tuple[str, ...]] = {
    "local": (),
    "simulated": ("nodes_file", "min_gpu_share"),
    "slurm": ("rest_url", "rest_user", "token", "log_dir", "slurm_conf", "bin_dir", "state_dir", "work_dir",
              "partitions", "default_partition", "name_prefix", "accounts", "min_gpu_share"),
    "ray": ("address", "resources", "name_prefix", "min_gpu_share"),
}
# The finest GPU share (milli-GPU) and the default of min_gpu_share; the shares it may be: from 0.01 to 1 GPU,
# dividing one GPU evenly in milli-GPU.
FINEST_GPU_SHARE = 10
WHOLE_GPU = 1000
GPU_SHARES = tuple(m for m in range(FINEST_GPU_SHARE, WHOLE_GPU + 1) if WHOLE_GPU % m == 0)
GPU_SHARE_TEXT = tuple(format_raw(m, "gpu") for m in GPU_SHARES)
_SHARES_TEXT = ", ".join(GPU_SHARE_TEXT)
SECRETS = frozenset({"token", "address"})
MAPS = frozenset({"partitions", "resources", "accounts"})
PATHS = frozenset({"log_dir", "slurm_conf", "bin_dir", "state_dir", "work_dir", "nodes_file"})
COMMANDS_ONLY = ("slurm_conf", "bin_dir")  # Slurm settings that only the command fallback reads
REST_ONLY = ("rest_user", "token")
RAY_RESERVED = frozenset({"CPU", "GPU", "memory", "object_store_memory", "accelerator_type"})

_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
MAX_PREFIX = 32
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
_RAY_RESOURCE = re.compile(r"^[A-Za-z0-9_.:-]+$")

# -- the same rules as patterns, for the OpenAPI (engine_schemas.py states them per backend) -------------------------
# A setting is stripped of surrounding spaces before it is checked (merge); map values are not. What str.strip()
# removes and free text may hold:
STRIPPED_SPACE = "[ \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
_SPACES = STRIPPED_SPACE[1:-1]
_ANY = f"[^/{names.TEXT_FORBIDDEN}]"  # in a path segment
_NOT_DOT = f"[^/.{names.TEXT_FORBIDDEN}]"
_INK = f"[^/{_SPACES}{names.TEXT_FORBIDDEN}]"
_INK_NOT_DOT = f"[^/.{_SPACES}{names.TEXT_FORBIDDEN}]"
# A segment is neither '.' nor '..'; the last one also ends in a character strip() keeps, so that the path is
# still plain once stripped ('/a/. ' would become '/a/.').
_SEGMENT = f"(?:{_NOT_DOT}|\\.{_NOT_DOT}|\\.\\.{_ANY}){_ANY}*"
_LAST_SEGMENT = f"(?:{_INK_NOT_DOT}|{_NOT_DOT}{_ANY}*{_INK}|\\.(?:{_INK_NOT_DOT}|{_ANY}+{_INK}))"
# What urlsplit() reads as http(s)://[user[:password]@]host[:port][/path], without a query or a fragment: an
# ASCII host (RFC 3986's reg-name characters) and a port from 0 to 65535.
_HOST = "[A-Za-z0-9._~%!$&'()*+,;=-]+"
_PORT = "(?::(?:[0-9]{0,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
_URL_PATH = f"(?:/[^?#{names.TEXT_FORBIDDEN}]*)?"
_URL_USERINFO = "(?:[A-Za-z0-9._~%!$&'()*+,;=:-]*@)?"


def _stripped(core: str) -> str:
    return f"^{STRIPPED_SPACE}*(?:{core}){STRIPPED_SPACE}*$"


def _url_regex(credentials: bool) -> str:
    return _stripped(f"[Hh][Tt][Tt][Pp][Ss]?://{_URL_USERINFO if credentials else ''}{_HOST}{_PORT}{_URL_PATH}")


def _rules(pattern: str, max_length: int | None = None, min_length: int | None = None):
    rules: list[tuple[str, Any]] = [("pattern", pattern)]
    rules += [("maxLength", max_length)] if max_length is not None else []
    rules += [("minLength", min_length)] if min_length is not None else []
    return SchemaRules(tuple(rules))


PATH_REGEX = _stripped(f"(?:/{_SEGMENT})*/(?:{_LAST_SEGMENT})?")
Url = Annotated[Text(MAX_URL), _rules(_url_regex(credentials=False))]
AddressUrl = Annotated[Text(MAX_URL), _rules(_url_regex(credentials=True))]
PathText = Annotated[Text(MAX_PATH), _rules(PATH_REGEX)]
RestUser = Annotated[Text(MAX_ENGINE_NAME), _rules(_stripped(_USER.pattern[1:-1]))]
Token = Annotated[Text(MAX_TOKEN), _rules(_stripped(_TOKEN.pattern[1:-1]))]
PartitionName = Annotated[Text(MAX_ENGINE_NAME), _rules(_stripped(_SLURM_NAME.pattern[1:-1]))]
NamePrefix = Annotated[Text(MAX_ENGINE_NAME), _rules(_stripped(_PREFIX.pattern[1:-2] + f"{{0,{MAX_PREFIX - 1}}}"))]
PoolKey = Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_NAME),
                    _rules(names.SPACED_NAME_REGEX, limits.MAX_NAME, 1)]
UserKey = Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_NAME),
                    _rules(f"^(?:\\*|{names.NAME_REGEX[1:-1]})$", limits.MAX_NAME, 1)]
# Map values are taken as they are.
MappedPartition = Annotated[Text(MAX_ENGINE_NAME), _rules(_SLURM_NAME.pattern)]
MappedAccount = Annotated[Text(MAX_ENGINE_NAME), _rules(_USER.pattern)]
MappedResource = Annotated[Text(MAX_ENGINE_NAME), WithJsonSchema({
    "type": "string", "minLength": 1, "maxLength": MAX_ENGINE_NAME, "pattern": _RAY_RESOURCE.pattern,
    "not": {"enum": sorted(RAY_RESERVED)}, "description": "a custom resource, not one of Ray's own"})]
PartitionMap = Annotated[dict[PoolKey, MappedPartition], Field(max_length=limits.MAX_LIST_ITEMS), KeyRules()]
ResourceMap = Annotated[dict[PoolKey, MappedResource], Field(max_length=limits.MAX_LIST_ITEMS), KeyRules()]
AccountMap = Annotated[dict[UserKey, MappedAccount], Field(max_length=limits.MAX_LIST_ITEMS), KeyRules()]
GpuShare = Annotated[str | int | float, PlainValidator(_amount), WithJsonSchema({"anyOf": [
    {"type": "number", "enum": [m / WHOLE_GPU for m in GPU_SHARES]},
    {"type": "string", "pattern": _stripped("|".join(re.escape(t) for t in GPU_SHARE_TEXT))}],
    "description": f"a share of one GPU that divides it evenly in milli-GPU: {_SHARES_TEXT}"})]


class EngineIn(BaseModel):
    """Engine settings as given (create: what to set; update: what changes, null resetting a setting)."""

    model_config = ConfigDict(extra="forbid")

    rest_url: Url | None = Field(None, description="slurm: slurmrestd's URL (http or https); without it Slurm's "
                                                   "commands are used")
    rest_user: RestUser | None = Field(None, description="slurm: the user name the token was issued for")
    token: Token | None = Field(None, description="slurm: slurmrestd's JWT (scontrol token); write-only")
    log_dir: PathText | None = Field(None, description="slurm: where jobs write their output (shared with the "
                                                       "compute nodes); required")
    slurm_conf: PathText | None = Field(None, description="slurm without rest_url: SLURM_CONF for the commands")
    bin_dir: PathText | None = Field(None, description="slurm without rest_url: where sbatch is (default /usr/bin)")
    state_dir: PathText | None = Field(None, description="slurm: the engine's run records (default "
                                                         "LOG_DIR/.allot-slurm)")
    work_dir: PathText | None = Field(None, description="slurm: the jobs' working directory (default log_dir)")
    partitions: PartitionMap | None = Field(None, description="slurm: pool -> partition")
    default_partition: PartitionName | None = Field(None, description="slurm: the partition of unmapped pools")
    name_prefix: NamePrefix | None = Field(None, description="slurm, ray: prefix of the engine's job names, one per "
                                                           "allotment sharing the cluster (default allot)")
    accounts: AccountMap | None = Field(None, description="slurm: allotment user -> the account their jobs run as "
                                                          "(needs a token of SlurmUser or root, or sbatch as root)")
    address: AddressUrl | None = Field(None, description="ray: the Ray Jobs API's address; write-only (it may hold "
                                                  "credentials)")
    resources: ResourceMap | None = Field(None, description="ray: pool -> custom resource")
    nodes_file: PathText | None = Field(None, description="simulated: a YAML or JSON file of virtual nodes")
    min_gpu_share: GpuShare | None = Field(None, description="simulated, slurm, ray: the smallest share of one GPU "
                                                             "a job may ask for (default 0.01; a Slurm cluster "
                                                             "whose GPUs are not shared: 1)")


@dataclass(frozen=True)
class EngineConfig:
    """A cluster's engine settings with its secrets opened: what scheduler/engines.py builds an engine from."""

    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.secrets.get(name, self.settings.get(name))
        return default if value is None else value

    def redact(self, text: str) -> str:
        """The text without this engine's secrets (an engine's error may quote its address)."""
        for secret in self.secrets.values():
            if secret:
                text = text.replace(secret, "***")
        return redact_credentials(text)


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def redact_credentials(text: str) -> str:
    """URLs with credentials (scheme://user:password@host) lose them."""
    return _USERINFO.sub(r"\1***@", text)


# -- parsing and checking --------------------------------------------------------------------------------------------

def parse(raw: dict[str, Any] | EngineIn | None) -> dict[str, Any]:
    """The settings a request names (left-out ones absent, null ones None), checked for type and size."""
    if raw is None:
        return {}
    if isinstance(raw, EngineIn):
        return raw.model_dump(exclude_unset=True)
    try:
        return EngineIn.model_validate(raw).model_dump(exclude_unset=True)
    except ValidationError as exc:
        errors = [FieldError(".".join(["engine", *(str(p) for p in e["loc"])]), e["msg"].removeprefix("Value error, "))
                  for e in exc.errors()]
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors) from None


def merge(backend: str, plain: dict[str, Any], secrets: dict[str, str], changes: dict[str, Any]
          ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The settings after `changes` (None resets), checked for `backend`, and the names of those that changed."""
    problems = [FieldError(f"engine.{name}", f"is not a setting of the {backend} engine ("
                           f"{_accepted(backend)})") for name in changes if name not in SETTINGS[backend]]
    problems += [FieldError(f"engine.{name}", "must not be empty (null resets it)") for name, value in changes.items()
                 if isinstance(value, str) and not value.strip()]
    if problems:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in problems), problems)
    new_plain, new_secrets = dict(plain), dict(secrets)
    changed = []
    for name, value in changes.items():
        target = new_secrets if name in SECRETS else new_plain
        if isinstance(value, str):
            value = value.strip()
        if value in (None, {}) and name in target:
            del target[name]
            changed.append(name)
        elif value not in (None, {}) and target.get(name) != value:
            target[name] = dict(value) if isinstance(value, dict) else value
            changed.append(name)
    check(backend, new_plain, new_secrets)
    return new_plain, new_secrets, sorted(changed)


def _accepted(backend: str) -> str:
    accepted = SETTINGS[backend]
    return f"it accepts {', '.join(accepted)}" if accepted else "it takes no settings"


def check(backend: str, plain: dict[str, Any], secrets: dict[str, str]) -> None:
    """Every problem of a backend's complete settings, each naming its field."""
    values = {**plain, **secrets}
    problems: list[FieldError] = []

    def problem(name: str, message: str) -> None:
        problems.append(FieldError(f"engine.{name}", message))

    for name, value in values.items():
        if name in PATHS:
            _check_path(name, value, problem)
    if values.get("min_gpu_share") is not None:
        _, why = gpu_share_of(values["min_gpu_share"])
        if why:
            problem("min_gpu_share", why)
    if backend == "slurm":
        _check_slurm(values, problem)
    elif backend == "ray":
        _check_ray(values, problem)
    if problems:
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in problems), problems)


def _check_path(name: str, value: str, problem) -> None:
    if not value.startswith("/"):
        problem(name, "must be an absolute path (starting with /)")
    elif value != "/" and (posixpath.normpath(value) != value.removesuffix("/") or value.startswith("//")):
        # normpath keeps a leading '//' (POSIX leaves its meaning to the system) and drops trailing ones: both are
        # refused like any repeated '/'.
        problem(name, "must be a plain absolute path, without '.', '..' or repeated '/'")


def _check_url(name: str, value: str, problem, credentials: bool) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        problem(name, "must be a URL such as http://host:6820")
        return
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem(name, "must be an http:// or https:// URL with a host, such as http://host:6820")
    elif not credentials and (parts.username is not None or parts.password is not None):
        problem(name, "must not hold credentials: give the user name and token as rest_user and token")
    elif parts.query or parts.fragment:
        problem(name, "must not have a query or a fragment")


def _check_names(name: str, value: dict[str, str], what: str, pattern: re.Pattern, problem,
                 reserved: frozenset[str] = frozenset()) -> None:
    for pool, target in value.items():
        bad_pool = names.name_problems(pool, "pool", spaces=True)
        if bad_pool:  # named by the map only: the key itself may not be printable
            problem(name, f"its keys are pool names, and one {bad_pool[0]}")
        elif not pattern.match(target):
            problem(f"{name}.{pool}", f"must be a {what}: letters, digits, '_', '.' and '-'")
        elif target in reserved:
            problem(f"{name}.{pool}", f"{target} is one of Ray's own resources: name a custom resource")


def _check_slurm(values: dict[str, Any], problem) -> None:
    if not values.get("log_dir"):
        problem("log_dir", "is required: the directory where jobs write their output, shared with the compute nodes")
    rest = values.get("rest_url")
    if rest:
        _check_url("rest_url", rest, problem, credentials=False)
        for name in REST_ONLY:
            if not values.get(name):
                problem(name, "is required with rest_url (scontrol token username=NAME issues both)")
        for name in COMMANDS_ONLY:
            if name in values:
                problem(name, "is read only by Slurm's commands, which are not used with rest_url: reset it (null)")
    else:
        for name in REST_ONLY:
            if name in values:
                problem(name, "is used only with rest_url: set rest_url, or reset it (null)")
    user = values.get("rest_user")
    if user and not _USER.match(user):
        problem("rest_user", "must be a user name: a letter or '_', then letters, digits, '_', '.' and '-'")
    token = values.get("token")
    if token and not _TOKEN.match(token):
        problem("token", "must be printable ASCII without spaces, as scontrol token prints it")
    _check_prefix(values, problem)
    default = values.get("default_partition")
    if default and not _SLURM_NAME.match(default):
        problem("default_partition", "must be a partition name: letters, digits, '_', '.' and '-'")
    _check_names("partitions", values.get("partitions") or {}, "partition name", _SLURM_NAME, problem)
    accounts = values.get("accounts") or {}
    if accounts and rest and user == "root" and "*" not in accounts:
        problem("accounts", "with rest_user root, jobs of users not in the map would run as root: map '*' (everyone "
                            "else) to an unprivileged account")
    for owner, account in accounts.items():
        if owner != "*" and names.name_problems(owner, "user"):  # named by the map only: the key may not be printable
            problem("accounts", "its keys are allotment user names (or '*'), and one is not")
        elif not _USER.match(account):
            problem(f"accounts.{owner}", "must be an account name: a letter or '_', then letters, digits, '_', '.' "
                                         "and '-'")


def _check_prefix(values: dict[str, Any], problem) -> None:
    prefix = values.get("name_prefix")
    if prefix and (not _PREFIX.match(prefix) or len(prefix) > MAX_PREFIX):
        problem("name_prefix", f"must be a letter, then letters, digits, '_' and '-', at most {MAX_PREFIX} characters")


def _check_ray(values: dict[str, Any], problem) -> None:
    address = values.get("address")
    if not address:
        problem("address", "is required: the Ray Jobs API's address, such as http://head:8265")
    else:
        _check_url("address", address, problem, credentials=True)
    _check_names("resources", values.get("resources") or {}, "custom resource name", _RAY_RESOURCE, problem,
                 RAY_RESERVED)
    _check_prefix(values, problem)


def gpu_share_of(value: Any) -> tuple[int, str | None]:
    """(the minimum GPU share in milli-GPU, why the value cannot be one); the default for None. A number equal to one
    of GPU_SHARES, or its text as GPU_SHARE_TEXT writes it (the OpenAPI states the same two forms)."""
    if value is None:
        return FINEST_GPU_SHARE, None
    milli = None
    if isinstance(value, str):
        milli = next((m for m, text in zip(GPU_SHARES, GPU_SHARE_TEXT, strict=True) if value.strip() == text), None)
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        scaled = value * WHOLE_GPU
        milli = round(scaled) if abs(scaled - round(scaled)) < 1e-6 and round(scaled) in GPU_SHARES else None
        if milli is None and not 0.01 <= value <= 1:
            return FINEST_GPU_SHARE, f"must be from 0.01 to 1 GPU, one of {_SHARES_TEXT} (got {value:g})"
    if milli is None:
        shown = str(value)[:20]
        return FINEST_GPU_SHARE, (f"must be a share that divides one GPU evenly in milli-GPU: one of {_SHARES_TEXT} "
                                  f"(got {shown!r})")
    return milli, None


def gpu_share_step(settings: dict[str, Any] | None) -> int:
    """A cluster's minimum GPU share in milli-GPU, from its stored plain settings (default 0.01 GPU)."""
    step, why = gpu_share_of((settings or {}).get("min_gpu_share"))
    return FINEST_GPU_SHARE if why else step


# -- storing and showing ----------------------------------------------------------------------------------------------

def store(cluster: Cluster, secret_key: str, plain: dict[str, Any], secrets: dict[str, str],
          reseal: bool = True) -> None:
    """Keep the settings on the cluster; the sealed text is rewritten only when the secrets changed (`reseal`)."""
    document = dict(plain)
    if secrets:
        document["_set"] = sorted(secrets)  # which secrets are set, never their values
    cluster.engine_settings = document or None
    if reseal:
        cluster.engine_secrets = seal(secret_key, secrets)


def stored_secrets(cluster: Cluster, secret_key: str) -> dict[str, str]:
    return unseal(secret_key, cluster.engine_secrets)


def public_settings(cluster: Cluster) -> dict[str, Any]:
    """The settings as shown: plain values, and `{"set": bool}` for each secret of the backend (never its value).
    Which secrets are set is kept in the clear beside them (`_set`), so showing them needs no key."""
    plain = dict(cluster.engine_settings or {})
    present = set(plain.pop("_set", ()))
    shown: dict[str, Any] = {}
    for name in SETTINGS.get(cluster.backend, ()):
        if name in SECRETS:
            shown[name] = {"set": name in present}
        elif name in plain:
            shown[name] = plain[name]
    return shown


def plain_settings(cluster: Cluster) -> dict[str, Any]:
    plain = dict(cluster.engine_settings or {})
    plain.pop("_set", None)
    return plain


def engine_config(session: Session, cluster_id: int, secret_key: str) -> EngineConfig:
    """The cluster's engine settings with its secrets opened (raises SecretsUnreadable when they cannot be)."""
    row = session.execute(select(Cluster.backend, Cluster.engine_settings, Cluster.engine_secrets)
                          .where(Cluster.id == cluster_id)).first()
    if row is None:
        return EngineConfig("local")
    plain = dict(row.engine_settings or {})
    plain.pop("_set", None)
    return EngineConfig(row.backend, plain, unseal(secret_key, row.engine_secrets))
