"""`allot bench scenario` submits jobs that arrive together in batches the server accepts: never more than a batch's
limit (POST /jobs/batch refuses larger ones with 422), however many arrive at the same moment."""

from __future__ import annotations

import json

from allotment.bench import runner
from allotment.bench.scenario import JobPlan, QuotaPlan, Scenario
from allotment.core.limits import MAX_BATCH_JOBS


class RecordingApi:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def call(self, method: str, path: str, body=None):
        assert (method, path) == ("POST", "/jobs/batch")
        n = len(json.loads(body)["jobs"]) if isinstance(body, bytes) else len(body["jobs"])
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


def test_a_batch_is_sent_as_the_json_of_its_jobs_with_each_distinct_job_encoded_once():
    """BatchText writes exactly what json.dumps of batch_body writes (the server reads the same jobs), in order."""
    shapes = [("q", "small", 0, 1.0, 150.0), ("q2", "large", 5, 0.5, 700.5), ("q", "small", 0, 1.0, 150.0),
              ("q", "small", 0, 2.0, 150.0), ("q2", "medium", 0, 20.0, 350.0)]
    jobs = [JobPlan(at_ms=0.0, quota=q, job_class=c, priority=p, request=r, runtime_ms=t) for q, c, p, r, t in shapes]
    quotas = [QuotaPlan("q", None, 8.0, None), QuotaPlan("q2", None, 8.0, None)]
    scenario = Scenario("mix", "gpu", "default", 8.0, quotas, jobs)
    done = runner.Setup("sim", {"q": 'team-\u00e9 "q"', "q2": "q2"}, {0: "normal", 5: "high"})
    encode = runner.BatchText(scenario, done)
    for plans in (jobs, jobs[1:3], jobs[:1]):
        assert encode(plans) == json.dumps({"jobs": runner.batch_body(scenario, done, plans)}).encode()
    assert len(encode.texts) == 4
