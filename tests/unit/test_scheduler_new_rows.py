"""A new submission's JSON columns are read as their text and decoded once per distinct text (scheduler/load.py): the
decoded values are shared between rows, so each job's record must hold its own copies."""

from types import SimpleNamespace

from allotment.scheduler.load import JobInfo, json_value


def row(job_id: int, **json_texts) -> SimpleNamespace:
    fields = {"id": job_id, "quota_id": 1, "pool_id": None, "gpu_milli": 0, "cpu_milli": 1000, "memory_bytes": 0,
              "command": '["x"]', "time_limit_s": None, "labels": "{}", "env": None, "config_file": None,
              "sealed_env": None, "mounts": None, "owner": "ada", "state": "queued", "reason_code": None,
              "reason": None, "nodes": 1}
    fields.update(json_texts)
    return SimpleNamespace(**fields)


def test_texts_decode_to_their_values_and_decoded_values_pass_through():
    assert json_value('{"runtime_ms": 150}') == {"runtime_ms": 150}
    assert json_value('["train", "--lr", "0.1"]') == ["train", "--lr", "0.1"]
    assert json_value("null") is None and json_value(None) is None
    assert json_value(["already", "decoded"]) == ["already", "decoded"]


def test_jobs_with_the_same_texts_do_not_share_what_they_keep():
    text = '{"runtime_ms": 150, "team": "a"}'
    first = JobInfo(row(1, labels=text, env='{"A": "1"}', mounts='[{"folder": "f", "target": "t"}]'), new=True)
    second = JobInfo(row(2, labels=text, env='{"A": "1"}', mounts='[{"folder": "f", "target": "t"}]'), new=True)
    first.labels["team"] = "b"
    first.env["A"] = "2"
    first.command.append("--more")
    first.mounts.append({"folder": "g", "target": "u"})
    assert second.labels == {"runtime_ms": 150, "team": "a"} and second.env == {"A": "1"}
    assert second.command == ["x"] and second.mounts == [{"folder": "f", "target": "t"}]
    assert JobInfo(row(3, labels=text), new=True).labels == {"runtime_ms": 150, "team": "a"}
