"""The workload that placement keeps room for: the GPU amounts and whole cores of the jobs submitted so far, as the
tables the fragmentation score reads (placement.NodePool.score; the contract at the top of admission.py states it).
"""

from __future__ import annotations

from allotment.core.devices import WHOLE

FRAC_BIN = 10  # milli-GPU per entry of Demand's fragmentation table


class Demand:
    """The jobs submitted so far (per node: GPU amount and whole cores), the workload that fragmentation is measured
    against (FGD, "Beware of Fragmentation", ATC '23). Shared by a state's pools; deterministic, no clock.

    tables() -> (cores, rows) or None before any GPU job. ``cores`` are the distinct whole cores the GPU jobs ask
    (rounded up), ascending; rows[k] describes the jobs a node with at least cores[k - 1] (k = 0: fewer than
    cores[0]) but fewer than cores[k] whole free cores could host by CPU, as (frac, whole_le, whole_all, lack):
    frac[x // FRAC_BIN] is the fragmentation that a device with x milli-GPU free adds for those of them asking a
    share (x times their share of all jobs asking more than x); whole_le[w] the share of jobs that ask w or fewer whole
    GPUs, whole_all that of all whole-GPU jobs among them; lack the share of jobs asking more cores (for them all free
    GPU of the node is fragmented). A node's fragmentation is sum(frac[free of each device]) + partial * whole_le[wc]
    + free * (whole_all - whole_le[wc] + lack), with wc its completely free devices, partial its free GPU outside them
    and free all of it."""

    __slots__ = ("_counts", "_seen", "_tables", "jobs")

    def __init__(self) -> None:
        self._counts: dict[tuple[int, int], int] = {}  # (milli-GPU, whole cores) -> jobs
        self.jobs = 0  # GPU jobs added: tables() answers the same while it is unchanged
        self._seen = 0  # jobs when the tables were built
        self._tables: Tables | None = None

    def add(self, gpu: int, cpu: int = 0) -> None:
        if gpu > 0:
            key = (gpu, -(-cpu // 1000))
            self._counts[key] = self._counts.get(key, 0) + 1
            self.jobs += 1

    def tables(self) -> Tables | None:
        n = self.jobs
        if not n:
            return None
        if self._tables is None or n >= self._seen * 1.05 + 16:  # rebuilt as the mix grows
            bins = WHOLE // FRAC_BIN + 1
            by_cores: dict[int, list[tuple[int, int]]] = {}
            for (amount, cores), count in self._counts.items():
                by_cores.setdefault(cores, []).append((amount, count))
            cores_list = sorted(by_cores)
            above = [0] * (bins + 1)  # jobs (that fit by CPU) asking a share of more than bin i's amount
            whole = [0] * 17
            hosted = 0
            rows: list[tuple[list[float], list[float], float, float]] = [([0.0] * bins, [0.0] * 17, 0.0, 1.0)]
            for cores in cores_list:
                for amount, count in by_cores[cores]:
                    if amount < WHOLE:
                        above[min((amount - 1) // FRAC_BIN, bins - 1)] += count
                    else:
                        whole[min(amount // WHOLE, 16)] += count
                    hosted += count
                frac = [0.0] * bins
                running = 0
                for i in range(bins - 1, -1, -1):
                    running += above[i]
                    frac[i] = i * FRAC_BIN * running / n
                whole_le, acc = [], 0
                for k in range(17):
                    acc += whole[k]
                    whole_le.append(acc / n)
                rows.append((frac, whole_le, acc / n, (n - hosted) / n))
            self._tables = (cores_list, rows)
            self._seen = n
        return self._tables


Tables = tuple[list[int], list[tuple[list[float], list[float], float, float]]]
