from allotment.backends.base import Launch
from allotment.backends.simulated import SimulatedBackend, nodes_from_spec


def test_nodes_from_spec_repeats_and_parses_memory():
    nodes = nodes_from_spec({"nodes": [{"name": "h", "count": 2, "cpu": 64, "memory": "256Gi", "gpus": 8,
                                        "gpu_model": "H100"}]})
    assert [n.name for n in nodes] == ["h-0", "h-1"]
    assert nodes[0].memory_mib == 256 * 1024 and len(nodes[0].devices) == 8 and nodes[0].devices[0].model == "H100"


def test_jobs_finish_after_their_duration_in_order():
    b = SimulatedBackend()
    b.launch(Launch(1, "x", duration_s=2.0), now=10.0)
    b.launch(Launch(2, "x", duration_s=1.0), now=10.0)
    assert [(e.job_id, e.kind) for e in b.poll(10.0)] == [(1, "started"), (2, "started")]
    assert b.next_event_at() == 11.0
    assert [(e.job_id, e.kind, e.at) for e in b.poll(11.5)] == [(2, "succeeded", 11.0)]
    assert [(e.job_id, e.kind) for e in b.poll(12.0)] == [(1, "succeeded")]
    assert b.poll(100.0) == [] and b.next_event_at() is None


def test_cancelled_job_never_finishes_and_launch_is_idempotent():
    b = SimulatedBackend()
    b.launch(Launch(1, "x", duration_s=1.0), now=0.0)
    b.launch(Launch(1, "x", duration_s=1.0), now=0.5)
    b.cancel(1, now=0.5)
    events = b.poll(5.0)
    assert [(e.job_id, e.kind) for e in events] == [(1, "started")]
    assert b.next_event_at() is None


def test_time_limit_caps_duration():
    b = SimulatedBackend()
    b.launch(Launch(1, "x", duration_s=10.0, time_limit_s=3.0), now=0.0)
    b.poll(0.0)
    assert b.next_event_at() == 3.0
