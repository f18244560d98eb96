"""Job logs through the API: paging by byte offset (never splitting a UTF-8 character), follow mode streaming what
is written while the request is open, who may read them, simulated and never-started jobs, and retention."""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import timedelta

import anyio
import pytest
from inventory_helpers import API, make_user, sessions
from sched_helpers import Harness

from allotment.db import transaction, utcnow
from allotment.workloads import logs
from allotment.workloads.models import Job


@pytest.fixture
def lab(client, admin_headers):
    """Quota `lab` on cluster local (one CPU), bound to alice; bob is another user of the cluster."""
    r = client.post(f"{API}/clusters/local/quotas", headers=admin_headers, json={
        "name": "lab", "resources": [{"resource": "cpu", "guarantee": 1, "limit": 1}]})
    assert r.status_code == 201, r.text
    alice = make_user(client, "alice", cluster_role="user")
    assert client.put(f"{API}/quotas/lab/bindings/users/alice", headers=admin_headers).status_code == 204
    return alice


def submit(client, headers, command: list[str], quota: str = "lab") -> int:
    r = client.post(f"{API}/jobs", headers=headers, json={"quota": quota, "command": command, "cpu": "0.1"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def log_path(settings, job_id: int):
    return settings.data_dir / "jobs" / f"job-{job_id}.log"


def write_log(settings, job_id: int, data: bytes, mode: str = "wb") -> None:
    path = log_path(settings, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as f:
        f.write(data)


def set_job(client, job_id: int, **values) -> None:
    with transaction(sessions(client)) as s:
        job = s.get(Job, job_id)
        for name, value in values.items():
            setattr(job, name, value)


def read(client, headers, job_id: int, status: int = 200, **params):
    r = client.get(f"{API}/jobs/{job_id}/logs", headers=headers, params=params)
    assert r.status_code == status, r.text
    return r.json()


def test_a_real_local_job_pages_by_offset_and_limit(client, admin_headers, settings, lab):
    h = Harness(client, admin_headers)
    job_id = submit(client, lab, ["sh", "-c", "for i in $(seq 1 200); do echo line $i; done"])
    deadline = time.time() + 30
    while time.time() < deadline and h.job(job_id)["state"] not in ("succeeded", "failed"):
        h.scheduler.run_cycle()
        time.sleep(0.05)
    expected = "".join(f"line {i}\n" for i in range(1, 201))
    whole = read(client, lab, job_id)
    assert (whole["text"], whole["offset"], whole["next_offset"], whole["size"]) == (
        expected, 0, len(expected), len(expected))
    assert whole["complete"] and whole["state"] == "succeeded" and whole["note"] is None

    pages, offset = [], 0
    while True:
        page = read(client, lab, job_id, offset=offset, limit=100)
        assert page["offset"] == offset and len(page["text"]) <= 100
        pages.append(page["text"])
        offset = page["next_offset"]
        if page["complete"]:
            break
    assert "".join(pages) == expected and len(pages) == -(-len(expected) // 100)
    past = read(client, lab, job_id, offset=10**9)  # past the end: nothing, and nothing to wait for
    assert (past["text"], past["next_offset"], past["complete"]) == ("", 10**9, True)


def test_paging_never_splits_a_character(client, settings, lab):
    job_id = submit(client, lab, ["true"])
    text = "héllo wörld, ünïcode 日本語 and 🎉 emoji\n" * 20
    write_log(settings, job_id, text.encode())
    set_job(client, job_id, state="succeeded", started_at=utcnow(), finished_at=utcnow())
    for limit in (1, 2, 3, 5, 7, 64):
        pages, offset = [], 0
        while True:
            page = read(client, lab, job_id, offset=offset, limit=limit)
            assert "\ufffd" not in page["text"], (limit, page)
            pages.append(page["text"])
            offset = page["next_offset"]
            if page["complete"]:
                break
        assert "".join(pages) == text, limit
    # An offset given by hand inside a character starts after it.
    inside = 2  # "h" is one byte, then the second byte of é
    page = read(client, lab, job_id, offset=inside, limit=4)
    assert page["offset"] == inside + 1 and page["text"].startswith("llo")


def test_an_unfinished_character_at_the_end_waits_until_the_job_ends(client, settings, lab):
    job_id = submit(client, lab, ["true"])
    set_job(client, job_id, state="running", started_at=utcnow())
    write_log(settings, job_id, b"ok \xe6\x97")  # the first two bytes of a three-byte character
    page = read(client, lab, job_id)
    assert (page["text"], page["next_offset"], page["complete"]) == ("ok ", 3, False)
    write_log(settings, job_id, b"\xa5\n", "ab")
    assert read(client, lab, job_id, offset=3)["text"] == "日\n"
    write_log(settings, job_id, b"\xff\xe6", "ab")  # not UTF-8, and a character that will never be finished
    set_job(client, job_id, state="failed", finished_at=utcnow())
    page = read(client, lab, job_id, offset=7)
    assert (page["text"], page["complete"]) == ("\ufffd\ufffd", True)


def test_bad_offsets_and_limits_are_refused_naming_the_field(client, lab):
    job_id = submit(client, lab, ["true"])
    for params, field in (({"offset": -1}, "offset"), ({"limit": 0}, "limit"), ({"limit": 2 * 1024 * 1024}, "limit"),
                          ({"offset": "x"}, "offset"), ({"follow": "perhaps"}, "follow")):
        r = client.get(f"{API}/jobs/{job_id}/logs", headers=lab, params=params)
        assert r.status_code == 422, (params, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field]


def test_a_job_that_never_started_and_a_simulated_job_have_empty_logs_with_a_note(client, admin_headers, settings,
                                                                                  lab):
    queued = submit(client, lab, ["true"])
    page = read(client, lab, queued)
    assert (page["text"], page["size"], page["complete"]) == ("", 0, False)
    assert page["note"] == "the job has not started yet, so it has no output"
    set_job(client, queued, state="cancelled", finished_at=utcnow())
    assert read(client, lab, queued)["note"] == "the job never started, so it has no output"

    h = Harness(client, admin_headers)  # cluster `sim`, simulated
    h.node("n1", gpus=1)
    h.quota("simq", [{"resource": "gpu", "guarantee": 1, "limit": 1}])
    sim = h.submit("simq", gpu=1)
    h.settle()
    page = read(client, admin_headers, sim)
    assert page["state"] == "running" and page["text"] == "" and page["note"] == logs.SIMULATED_NOTE


def test_who_may_read_a_jobs_log(client, admin_headers, settings, lab):
    job_id = submit(client, lab, ["true"])
    write_log(settings, job_id, b"secret output\n")
    bob = make_user(client, "bob", cluster_role="user")
    carol = make_user(client, "carol", cluster_role="manager")
    dave = make_user(client, "dave", cluster_role="admin")
    for headers in (lab, carol, dave, admin_headers):  # owner, cluster manager, cluster admin, platform admin
        assert read(client, headers, job_id)["text"] == "secret output\n"
    # Another user, even one with a role on the cluster, is told what GET /jobs/{id} tells them: no such job.
    for params in ({}, {"follow": "true"}):
        r = client.get(f"{API}/jobs/{job_id}/logs", headers=bob, params=params)
        assert r.status_code == 404 and r.json()["detail"] == f"no job {job_id}"
        assert "secret" not in r.text
    assert client.get(f"{API}/jobs/{job_id}", headers=bob).status_code == 404
    assert client.get(f"{API}/jobs/999999/logs", headers=bob).status_code == 404
    assert client.get(f"{API}/jobs/{job_id}/logs").status_code == 401


def events_of(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_follow_streams_lines_written_while_the_request_is_open(client, settings, lab, monkeypatch):
    monkeypatch.setattr(logs, "FOLLOW_POLL_S", 0.02)
    job_id = submit(client, lab, ["true"])
    set_job(client, job_id, state="running", started_at=utcnow())
    write_log(settings, job_id, b"before\n")

    def writer() -> None:  # while the follow request is open: three lines, then the job ends
        for i in range(3):
            time.sleep(0.3)
            write_log(settings, job_id, f"line {i}\n".encode(), "ab")
        time.sleep(0.3)
        write_log(settings, job_id, "last ✓\n".encode(), "ab")
        set_job(client, job_id, state="succeeded", finished_at=utcnow())

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.monotonic()
    r = client.get(f"{API}/jobs/{job_id}/logs", headers=lab, params={"follow": "true", "offset": 3})
    thread.join()
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    assert time.monotonic() - started >= 1.2  # it waited for the job to end
    events = events_of(r)
    assert events[0] == {"event": "start", "next_offset": 3, "state": "running"}
    output = [e for e in events if e["event"] == "output"]
    assert len(output) >= 4  # each line read as it came, not all at the end
    assert "".join(e["text"] for e in output) == "ore\nline 0\nline 1\nline 2\nlast ✓\n"
    assert all(a["next_offset"] == b["offset"] for a, b in itertools.pairwise(output))
    total = log_path(settings, job_id).stat().st_size
    assert events[-1] == {"event": "end", "next_offset": total, "state": "succeeded"}


def collect(events) -> list[dict]:
    async def run() -> list[dict]:
        return [e async for e in events]

    return anyio.run(run)


def test_follow_sends_keepalives_and_stops_at_its_longest(tmp_path):
    path = tmp_path / "job-1.log"
    path.write_bytes(b"x\n")
    clock = iter(range(10**6))
    events = collect(logs.follow_log(logs.LogSource(path), 0, lambda: "running", poll_s=0, state_check_s=0,
                                     keepalive_s=3, max_s=10, clock=lambda: float(next(clock))))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "output" and kinds[-1] == "resume" and "keepalive" in kinds
    assert events[-1] == {"event": "resume", "next_offset": 2, "state": "running"}
    stopping = threading.Event()
    stopping.set()  # the server is stopping: followers end at once, to follow again once it is back
    events = collect(logs.follow_log(logs.LogSource(path), 0, lambda: "running", stopping=stopping))
    assert [e["event"] for e in events] == ["output", "resume"]
    ended = collect(logs.follow_log(logs.LogSource(None, logs.SIMULATED_NOTE), 0, lambda: "succeeded"))
    assert ended == [{"event": "end", "next_offset": 0, "state": "succeeded"}]


def test_follow_of_a_real_local_job_ends_when_it_does(client, admin_headers, settings, lab, monkeypatch):
    monkeypatch.setattr(logs, "FOLLOW_POLL_S", 0.05)
    h = Harness(client, admin_headers)
    job_id = submit(client, lab, ["sh", "-c", "echo one; sleep 0.5; echo two; sleep 0.5; echo three"])
    stop = threading.Event()

    def loop() -> None:  # the scheduler, as the server runs it, while the test follows the job
        while not stop.is_set():
            h.scheduler.run_cycle()
            time.sleep(0.05)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        r = client.get(f"{API}/jobs/{job_id}/logs", headers=lab, params={"follow": "true"})
    finally:
        stop.set()
        thread.join()
    events = events_of(r)
    assert "".join(e.get("text", "") for e in events) == "one\ntwo\nthree\n"
    assert events[-1]["event"] == "end" and events[-1]["state"] == "succeeded"


def test_retention_deletes_old_logs_and_keeps_fresh_ones(client, settings, lab):
    now = utcnow()
    old, fresh, running = (submit(client, lab, ["true"]) for _ in range(3))
    for job_id in (old, fresh, running):
        write_log(settings, job_id, b"output\n")
    set_job(client, old, state="succeeded", started_at=now - timedelta(days=41), finished_at=now - timedelta(days=40))
    set_job(client, fresh, state="failed", started_at=now - timedelta(days=3), finished_at=now - timedelta(days=2))
    set_job(client, running, state="running", started_at=now - timedelta(days=90))
    stray = settings.data_dir / "jobs" / "job-999999.log"  # no job of this server: not ours to delete
    stray.write_bytes(b"?")

    with sessions(client)() as session:
        assert logs.delete_expired_logs(session, settings.model_copy(update={"job_log_retention_days": 0})) == 0
        assert logs.delete_expired_logs(session, settings, now) == 1
    assert not log_path(settings, old).exists()
    assert log_path(settings, fresh).exists() and log_path(settings, running).exists() and stray.exists()
    page = read(client, lab, old)
    assert page["text"] == "" and page["complete"]
    assert page["note"].startswith("the log was deleted: logs are kept for 30 day(s)")
    assert read(client, lab, fresh)["text"] == "output\n"


def test_the_retention_sweep_runs_in_the_background(client, settings, lab):
    job_id = submit(client, lab, ["true"])
    write_log(settings, job_id, b"output\n")
    long_ago = utcnow() - timedelta(days=31)
    set_job(client, job_id, state="succeeded", started_at=long_ago, finished_at=long_ago)
    sweeper = logs.LogRetention(sessions(client), settings, interval_s=0.05, first_after_s=0)
    try:
        deadline = time.monotonic() + 10
        while log_path(settings, job_id).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sweeper.stop()
    assert not log_path(settings, job_id).exists()


def test_each_engine_has_its_log_in_one_known_place(settings, tmp_path):
    assert logs.log_source(settings, "local", {"log_dir": "/elsewhere"}, 7).path == settings.data_dir / "jobs" / \
        "job-7.log"
    assert logs.log_source(settings, "slurm", {"log_dir": "/shared/logs"}, 7).path.as_posix() == \
        "/shared/logs/job-7.log"
    assert logs.log_source(settings, "ray", {}, 7).path == settings.data_dir / "jobs" / "job-7.log"
    assert logs.log_source(settings, "simulated", {}, 7) == logs.LogSource(None, logs.SIMULATED_NOTE)


def test_the_job_page_shows_an_escaped_tail_that_polls_until_the_job_ends(client, settings, lab):
    job_id = submit(client, lab, ["true"])
    set_job(client, job_id, state="running", started_at=utcnow())
    write_log(settings, job_id, b"<script>alert(1)</script>\n")
    page = client.get(f"/ui/jobs/{job_id}", headers=lab)
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    size = log_path(settings, job_id).stat().st_size
    assert f'hx-get="/ui/jobs/{job_id}/log?offset={size}"' in page.text

    write_log(settings, job_id, b"more & more\n", "ab")
    chunk = client.get(f"/ui/jobs/{job_id}/log", headers=lab, params={"offset": size})
    assert chunk.text.startswith("more &amp; more\n<span id=\"job-log-poll\"")
    set_job(client, job_id, state="succeeded", finished_at=utcnow())
    end = client.get(f"/ui/jobs/{job_id}/log", headers=lab, params={"offset": size + 12})
    assert "job-log-poll" not in end.text and "The job ended (succeeded)." in end.text
    bob = make_user(client, "bob", cluster_role="user")
    assert client.get(f"/ui/jobs/{job_id}/log", headers=bob).status_code == 404


TOKEN = "ghp_Sécret0123456789"  # GITHUB_TOKEN is on the default hide-list; é: a value is matched as bytes


def submit_with_token(client, headers) -> int:
    r = client.post(f"{API}/jobs", headers=headers, json={"quota": "lab", "command": ["true"], "cpu": "0.1",
                                                          "env": {"GITHUB_TOKEN": TOKEN}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_no_page_shows_any_part_of_a_hidden_value_wherever_its_limit_or_offset_cuts_it(client, settings, lab):
    job_id = submit_with_token(client, lab)
    text = f"token={TOKEN}\nagain {TOKEN}{TOKEN}.\n"
    write_log(settings, job_id, text.encode())
    set_job(client, job_id, state="succeeded", started_at=utcnow(), finished_at=utcnow())
    pieces = [TOKEN[i:j] for i in range(len(TOKEN)) for j in range(i + 4, len(TOKEN) + 1)]
    for limit in (1, 3, 8, 13, 21, 64):
        pages, offset = [], 0
        while True:
            page = read(client, lab, job_id, offset=offset, limit=limit)
            assert not any(p in page["text"] for p in pieces), (limit, page)
            pages.append(page["text"])
            assert page["next_offset"] > offset
            offset = page["next_offset"]
            if page["complete"]:
                break
        assert "".join(pages) == "token=********\nagain ****************.\n", limit
    # an offset given by hand inside a value: what is left of it is masked
    page = read(client, lab, job_id, offset=len(b"token=ghp_S"), limit=64)
    assert page["text"].startswith("********\nagain ") and "0123" not in page["text"]


def test_a_hidden_value_half_written_is_held_back_until_the_rest_comes_or_the_job_ends(client, settings, lab):
    job_id = submit_with_token(client, lab)
    set_job(client, job_id, state="running", started_at=utcnow())
    write_log(settings, job_id, f"token={TOKEN[:9]}".encode())
    page = read(client, lab, job_id)
    assert (page["text"], page["next_offset"]) == ("token=", 6)  # the rest may be the value: not shown yet
    write_log(settings, job_id, f"{TOKEN[9:]} ok\n".encode(), "ab")
    assert read(client, lab, job_id, offset=6)["text"] == "******** ok\n"
    write_log(settings, job_id, b"ghp_S", "ab")  # it never goes on: once the job has ended, it is shown as written
    at = log_path(settings, job_id).stat().st_size - 5
    assert read(client, lab, job_id, offset=at)["text"] == ""
    set_job(client, job_id, state="failed", finished_at=utcnow())
    page = read(client, lab, job_id, offset=at)
    assert (page["text"], page["complete"]) == ("ghp_S", True)


def test_follow_never_shows_a_hidden_value_written_in_two_parts(client, settings, lab, monkeypatch):
    monkeypatch.setattr(logs, "FOLLOW_POLL_S", 0.02)
    job_id = submit_with_token(client, lab)
    set_job(client, job_id, state="running", started_at=utcnow())
    write_log(settings, job_id, f"token={TOKEN[:7]}".encode())

    def writer() -> None:
        time.sleep(0.4)
        write_log(settings, job_id, f"{TOKEN[7:]}\n".encode(), "ab")
        time.sleep(0.2)
        set_job(client, job_id, state="succeeded", finished_at=utcnow())

    thread = threading.Thread(target=writer)
    thread.start()
    r = client.get(f"{API}/jobs/{job_id}/logs", headers=lab, params={"follow": "true"})
    thread.join()
    output = [e["text"] for e in events_of(r) if e["event"] == "output"]
    assert "".join(output) == "token=********\n"
    assert not any(TOKEN[:7] in t or TOKEN[7:] in t for t in output), output
