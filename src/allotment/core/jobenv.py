"""The environment variables a job may declare (`allot jobs submit --env NAME=VALUE`).

Names are POSIX names (letters, digits, underscore; not starting with a digit). Some are reserved:
 - ALLOT_*: the engine's own (ALLOT_JOB_ID), and the server's settings, which a job must never be able to imitate;
 - CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES: the engine sets them to the devices the job was given;
 - LD_* and the other variables the C library honours to load code or data from a path of the caller's choosing
   (glibc's "unsecure" list, which it ignores for setuid programs): the local engine's wrapper and bubblewrap start
   with the job's environment before they drop privileges or enter the sandbox, so these must never reach them.
Values are text without NUL (no program can receive it). Sizes are bounded in core/limits.py.
"""

from __future__ import annotations

import re

from allotment.core import limits

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_PREFIXES = ("ALLOT_", "LD_")
RESERVED_NAMES = frozenset({
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
    # glibc's UNSECURE_ENVVARS (sysdeps/generic/unsecvars.h) besides LD_*
    "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST",
    "MALLOC_CHECK_", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_PERTURB_", "MALLOC_TOP_PAD_",
    "MALLOC_TRACE", "MALLOC_TRIM_THRESHOLD_", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR",
    "TZDIR", "GLIBC_TUNABLES",
})
RULE = (f"names are letters, digits and _ (not starting with a digit), at most {limits.MAX_ENV_NAME} characters; "
        f"ALLOT_*, LD_*, CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES and the C library's loader variables "
        f"(GCONV_PATH, TMPDIR, ...) are reserved")


def name_problem(name: object) -> str | None:
    """Why `name` cannot be declared, or None. Never quotes the name (it may be anything)."""
    if not isinstance(name, str) or not name or len(name) > limits.MAX_ENV_NAME or not NAME.fullmatch(name):
        return RULE
    if name.startswith(RESERVED_PREFIXES) or name in RESERVED_NAMES:
        return f"{name} is reserved: {RULE}"
    return None


def value_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "values are text"
    if "\x00" in value:
        return "values must not contain the NUL character (no program can receive it)"
    if len(value) > limits.MAX_ENV_VALUE:
        return f"values are at most {limits.MAX_ENV_VALUE} characters (got {len(value)})"
    return None


def problems(env: dict) -> list[str]:
    """Every problem of a declared environment (each names the variable where it can)."""
    found = []
    if len(env) > limits.MAX_ENV_VARS:
        found.append(f"at most {limits.MAX_ENV_VARS} variables (got {len(env)})")
    total = 0
    for name, value in env.items():
        problem = name_problem(name)
        if problem is not None:
            found.append(problem)
            continue
        problem = value_problem(value)
        if problem is not None:
            found.append(f"{name}: {problem}")
            continue
        total += len(name) + len(value)
    if total > limits.MAX_ENV_CHARS:
        found.append(f"at most {limits.MAX_ENV_CHARS} characters of names and values in all (got {total})")
    return found


def usable(env: dict | None) -> dict[str, str]:
    """What an engine may pass on: the declared variables that break no rule (a job stored before a rule existed
    loses those that break it now)."""
    return {k: v for k, v in (env or {}).items() if name_problem(k) is None and value_problem(v) is None}
