"""Reading traces into `TraceJob`s: a generic CSV with column mapping, and the Philly format with its capacity file.

Every reader checks every row and reports the bad ones with their line numbers (`TraceError`, at most
`MAX_REPORTED` of them listed) instead of stopping at the first or failing with a traceback. Times are seconds;
amounts are raw core units (milli-GPU, milli-cores, bytes).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from allotment.core.quantity import UNLIMITED, parse_quantity

MAX_REPORTED = 20
FORMATS = ("philly", "csv")


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job to replay: submitted at ``submit`` (epoch seconds), running ``duration`` seconds once started."""

    submit: float
    duration: float
    quota: str
    gpu: int = 0
    cpu: int = 0
    memory: int = 0
    priority_class: str | None = None
    pool: str | None = None
    line: int = 0
    nodes: int = 1  # > 1: a gang over that many nodes; the amounts above are its totals


class TraceError(ValueError):
    """Bad rows of a trace: ``problems`` lists (line, message); the message names the first ones."""

    def __init__(self, source: str, problems: list[tuple[int, str]], total: int | None = None):
        self.source = source
        self.problems = problems[:MAX_REPORTED]
        self.total = len(problems) if total is None else total
        shown = "; ".join(f"line {n}: {m}" if n else m for n, m in self.problems[:5])
        more = f" (and {self.total - 5} more)" if self.total > 5 else ""
        super().__init__(f"{source}: {self.total} bad row(s): {shown}{more}")


def parse_time(text: str) -> float:
    """Epoch seconds from a number or an ISO 8601 date and time (UTC unless it says otherwise)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def parse_period(text: str) -> tuple[float, float]:
    """`FROM..TO` (dates or date-times, TO inclusive when it is a date) as epoch seconds [from, to)."""
    if ".." not in text:
        raise ValueError(f"period '{text}' must be FROM..TO, e.g. 2017-10-01..2017-11-30")
    lo_text, hi_text = (p.strip() for p in text.split("..", 1))
    try:
        lo, hi = parse_time(lo_text), parse_time(hi_text)
    except ValueError:
        raise ValueError(f"period '{text}': FROM and TO must be dates (YYYY-MM-DD) or ISO date-times") from None
    if len(hi_text) == 10:  # a date: the whole day
        hi += 86400.0
    if hi <= lo:
        raise ValueError(f"period '{text}': TO must be after FROM")
    return lo, hi


@dataclass(frozen=True)
class Columns:
    """Which CSV column holds what (generic format). ``duration`` (seconds) or ``end`` (a time) gives the runtime;
    amounts are quantities as the API takes them (GPUs: 1, 0.5; CPU: 2, 500m; memory: 16Gi)."""

    submit: str = "submit"
    duration: str | None = "duration"
    end: str | None = None
    gpu: str | None = "gpu"
    cpu: str | None = "cpu"
    memory: str | None = "memory"
    quota: str = "quota"
    priority_class: str | None = "priority_class"
    pool: str | None = "pool"


_SCALE = {"gpu": 1000, "cpu": 1000, "memory": 1}


def _amount(text: str, resource: str) -> int:
    if text.isdigit():  # the common case, without the general parser
        return int(text) * _SCALE[resource]
    value = parse_quantity(text, resource)
    if value == UNLIMITED:
        raise ValueError("a job cannot ask for an unlimited amount")
    return int(value.raw)


def read_csv(text: Iterable[str], columns: Columns = Columns(), source: str = "trace",
             period: tuple[float, float] | None = None) -> list[TraceJob]:
    """Generic CSV: a header line, then one job a line. Optional columns missing from the header count as absent
    (0 or none); a required column (submit, quota, and duration or end) missing is an error naming it."""
    reader = csv.reader(text)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise TraceError(source, [(1, "the file is empty: a header line is expected")]) from None
    index = {h: i for i, h in enumerate(header)}
    runtime_col = columns.duration if columns.duration in index else columns.end
    missing = [name for name in (columns.submit, columns.quota) if name not in index]
    if runtime_col not in index:
        missing.append(columns.duration or columns.end or "duration")
    if missing:
        message = (f"no column {', '.join(repr(m) for m in missing)} in the header ({', '.join(header)}); "
                   f"name the columns with the mapping options")
        raise TraceError(source, [(1, message)])

    def col(name: str | None) -> int | None:
        return index.get(name) if name else None

    i_submit, i_quota, i_run = index[columns.submit], index[columns.quota], index[runtime_col]
    by_end = runtime_col != columns.duration
    optional = [("gpu", col(columns.gpu)), ("cpu", col(columns.cpu)), ("memory", col(columns.memory))]
    i_class, i_pool = col(columns.priority_class), col(columns.pool)
    jobs: list[TraceJob] = []
    problems: list[tuple[int, str]] = []
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.append((line, f"{len(row)} fields where the header has {len(header)}"))
            continue
        try:
            submit = parse_time(row[i_submit])
        except ValueError:
            problems.append((line, f"{columns.submit} {row[i_submit]!r} is not a time (ISO date-time or seconds)"))
            continue
        try:
            run = parse_time(row[i_run]) - submit if by_end else float(row[i_run])
        except ValueError:
            problems.append((line, f"{runtime_col} {row[i_run]!r} is not a {'time' if by_end else 'number'}"))
            continue
        if not run >= 0 or run == float("inf"):
            problems.append((line, f"{runtime_col} gives a runtime of {run} s: it must be a finite number >= 0"))
            continue
        quota = row[i_quota].strip()
        if not quota:
            problems.append((line, f"{columns.quota} is empty"))
            continue
        amounts = {}
        bad = None
        for resource, i in optional:
            value = row[i].strip() if i is not None else ""
            if not value:
                amounts[resource] = 0
                continue
            try:
                amounts[resource] = _amount(value, resource)
            except ValueError as exc:
                bad = f"{resource} {value!r}: {exc}"
                break
        if bad:
            problems.append((line, bad))
            continue
        if period is not None and not period[0] <= submit < period[1]:
            continue
        jobs.append(TraceJob(submit, run, quota, amounts["gpu"], amounts["cpu"], amounts["memory"],
                             (row[i_class].strip() or None) if i_class is not None else None,
                             (row[i_pool].strip() or None) if i_pool is not None else None, line))
    if problems:
        raise TraceError(source, problems)
    jobs.sort(key=lambda j: (j.submit, j.line))
    return jobs


PHILLY = Columns(submit="timestamp", duration="duration", gpu="num_gpus", cpu=None, memory=None, quota="cluster",
                 priority_class=None, pool=None)


def read_philly(text: Iterable[str], source: str = "trace", period: tuple[float, float] | None = None,
                keep: Iterable[str] | None = None) -> list[TraceJob]:
    """The Philly format (timestamp, duration, num_gpus, gpu_time, cluster): a job of the virtual cluster's quota.
    ``keep``: only jobs of those quotas."""
    jobs = read_csv(text, PHILLY, source, period)
    if keep is not None:
        kept = set(keep)
        jobs = [j for j in jobs if j.quota in kept]
    return jobs


def read_capacities(text: Iterable[str], source: str = "capacities", gpus_per_node: int = 8) -> dict[str, int]:
    """Philly's capacity file (vc, node num): GPUs per virtual cluster."""
    reader = csv.reader(text)
    header = [h.strip() for h in next(reader, [])]
    if header[:2] != ["vc", "node num"]:
        raise TraceError(source, [(1, f"the header must be 'vc,node num', not {','.join(header)!r}")])
    out: dict[str, int] = {}
    problems = []
    for row in reader:
        if not row:
            continue
        try:
            nodes = int(row[1])
            if nodes < 0:
                raise ValueError
        except (ValueError, IndexError):
            problems.append((reader.line_num, f"node num {row[1:2]} is not a whole number >= 0"))
            continue
        out[row[0].strip()] = nodes * gpus_per_node
    if problems:
        raise TraceError(source, problems)
    return out


def read_text(data: bytes | str) -> io.StringIO:
    """Bytes of an uploaded file as lines (UTF-8, with or without a byte order mark)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig", errors="replace")
    return io.StringIO(data, newline="")
