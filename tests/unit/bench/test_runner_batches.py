"""`allot bench scenario` submits jobs that arrive together in batches the server accepts: never more than a batch's
limit (POST /jobs/batch refuses larger ones with 422), however many arrive at the same moment."""

from __future__ import annotations

from allotment.bench import runner
from allotment.bench.scenario import JobPlan, QuotaPlan, Scenario
from allotment.core.limits import MAX_BATCH_JOBS


class RecordingApi:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def call(self, method: str, path: str, body=None):
        assert (method, path) == ("POST", "/jobs/batch")
        n = len(body["jobs"])
        assert n <= MAX_BATCH_JOBS, f"a batch of {n} jobs would be refused"
        self.sizes.append(n)
        start = sum(self.sizes) - n
        return {"ids": list(range(start, start + n))}


def test_a_burst_larger_than_a_batch_is_split_into_accepted_batches():
    burst = MAX_BATCH_JOBS + MAX_BATCH_JOBS // 2
    jobs = [JobPlan(at_ms=0.0, quota="q", job_class="small", priority=0, request=1.0, runtime_ms=10.0)
            for _ in range(burst)]
    scenario = Scenario("burst", "gpu", "default", 8.0, [QuotaPlan("q", None, 8.0, None)], jobs)
    api = RecordingApi()
    _, ids = runner.submit(api, scenario, runner.Setup("sim", {"q": "q"}, {0: "normal"}))
    assert ids == list(range(burst))
    assert len(api.sizes) >= 2 and sum(api.sizes) == burst
