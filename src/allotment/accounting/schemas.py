"""Usage reports, hour quotas and budgets as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from allotment.core.budgets import PERIODS

AMOUNT_HELP = "hours or minutes: 50h, 3.5h or 30m; 'infinity' or null for unlimited"
Amount = str | None


class UsageRow(BaseModel):
    key: str
    gpu_hours: float
    cpu_hours: float
    memory_gib_hours: float
    intervals: int = Field(description="usage intervals (one per admission of a job) inside the window")
    running: int = Field(description="of those, still holding resources")


class UsageReport(BaseModel):
    by: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    items: list[UsageRow]
    total: int

    model_config = {"populate_by_name": True}


class LiveUsage(BaseModel):
    job_id: int
    user: str
    cluster: str
    quota: str
    pool: str
    device_model: str | None
    since: datetime
    gpu: float
    cpu: float
    gpu_hours: float
    cpu_hours: float


class LiveUsageList(BaseModel):
    items: list[LiveUsage]
    total: int


class PoolCapacity(BaseModel):
    pool: str
    day: str
    allocated_gpu_hours: float
    capacity_gpu_hours: float = Field(description="the pool's devices over the day (its capacity history), in device-hours")
    allocated_share: float | None


class PoolCapacityList(BaseModel):
    items: list[PoolCapacity]
    total: int


class HourQuotaIn(BaseModel):
    gpu: Amount = Field(None, max_length=32, description=f"GPU hours; {AMOUNT_HELP}")
    cpu: Amount = Field(None, max_length=32, description=f"CPU hours; {AMOUNT_HELP}")


class HourQuotaAdd(BaseModel):
    gpu: Amount = Field(None, max_length=32, description="GPU hours to add (50h, 30m)")
    cpu: Amount = Field(None, max_length=32, description="CPU hours to add")


class HourQuotaOut(BaseModel):
    user: str
    cluster: str
    gpu: str = Field(description="Neu.ro's form: minutes (3000m) or infinity")
    cpu: str
    lines: list[str]


class SpentNumbers(BaseModel):
    spent_hours: float
    quota_hours: float | None
    left_hours: float | None
    quota: str


class HourQuotaReport(BaseModel):
    user: str
    cluster: str
    source: str = Field(description="where the quota comes from: user, cluster default or built-in default")
    gpu: SpentNumbers
    cpu: SpentNumbers
    lines: list[str] = Field(description="Neu.ro's show-quota lines")


class BudgetIn(BaseModel):
    period: Literal[PERIODS] = Field(description="monthly or weekly reset, or once: a grant that never replenishes")  # type: ignore[valid-type]
    amount: str = Field(max_length=32, description="hours or minutes: 500h, 3.5h, 90m")


class BudgetOut(BaseModel):
    quota: str
    resource: str
    period: str
    budget_hours: float
    spent_hours: float
    left_hours: float
    period_start: float
    resets_at: float | None
    text: str


class BudgetList(BaseModel):
    items: list[BudgetOut]
    total: int


class IntervalOut(BaseModel):
    state: str = Field(description="the job's state")
    end: datetime | None = Field(description="when the interval closed; null: still open")
    hours: float = Field(description="hours the interval held resources (so far, when open)")
    gpu_hours: float
    cpu_hours: float


class EngineCorrectionOut(BaseModel):
    cluster: str
    job: int
    outcome: str = Field(description="what the engine said: ended, lost or launched (it never started)")
    interval_start: datetime = Field(description="the job interval (its admission) the correction is about")
    before: IntervalOut = Field(description="what the records said")
    after: IntervalOut = Field(description="what they say after the engine answered")
    text: str


class RecalculationOut(BaseModel):
    cluster: str | None
    corrections: list[str] = Field(description="each usage record corrected, with the numbers")
    engines: list[str] = Field(default_factory=list, description="clusters whose state the scheduler rebuilt, "
                                                                 "asking their engines about their holding jobs")
    engine_corrections: list[EngineCorrectionOut] = Field(
        default_factory=list, description="each job interval where an engine's own record disagreed with the "
                                          "records, corrected: before and after")
    total: int = Field(description="how many corrections, of the records and by the engines")
