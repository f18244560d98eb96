"""Who may read a job's output (core.permissions.JOB_READER), and reading a log by byte offset on UTF-8 character
boundaries (workloads/logs.read_log)."""

from __future__ import annotations

import pytest

from allotment.core import permissions as p
from allotment.workloads.logs import read_log

ADMIN = p.Principal(1, "user", "root", is_platform_admin=True)
OWNER = p.Principal(2, "user", "alice", cluster_roles={10: "user"})
MANAGER = p.Principal(3, "user", "bob", cluster_roles={10: "manager"})
CLUSTER_ADMIN = p.Principal(4, "user", "carol", cluster_roles={10: "admin"})
USER = p.Principal(5, "user", "dave", cluster_roles={10: "user", 11: "admin"})
JOB = p.Scope(cluster_id=10, owner_id=2)


@pytest.mark.parametrize(("principal", "scope", "expected"), [
    (OWNER, JOB, True),
    (MANAGER, JOB, True),
    (CLUSTER_ADMIN, JOB, True),
    (ADMIN, JOB, True),
    (USER, JOB, False),  # a plain user of the cluster, admin of another one
    (OWNER, p.Scope(cluster_id=11, owner_id=5), False),
    (MANAGER, p.Scope(cluster_id=11, owner_id=2), False),  # a manager elsewhere
    (MANAGER, p.Scope(), False),
    (ADMIN, p.Scope(), True),
    (None, JOB, False),
])
def test_job_reader(principal, scope, expected):
    assert p.allowed(principal, p.JOB_READER, scope) is expected


TEXT = "a é 日 🎉\n"


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 100])
@pytest.mark.parametrize("complete", [False, True])
def test_paging_gives_back_the_text_exactly(tmp_path, limit, complete):
    path = tmp_path / "job-1.log"
    path.write_bytes(TEXT.encode())
    pieces, offset = [], 0
    while True:
        chunk = read_log(path, offset, limit, complete)
        assert chunk.offset == offset and len(chunk.text.encode()) <= limit + 3
        if chunk.next_offset == offset:
            break
        pieces.append(chunk.text)
        offset = chunk.next_offset
    assert "".join(pieces) == TEXT and offset == len(TEXT.encode())


@pytest.mark.parametrize(("data", "complete", "text", "next_offset"), [
    (b"ab\xf0\x9f", False, "ab", 2),  # half an emoji at the end of a file still being written: left for later
    (b"ab\xf0\x9f", True, "ab\ufffd", 4),  # the job has ended: it will never be finished
    (b"\xff\xfeok", False, "\ufffd\ufffdok", 4),  # not UTF-8 at all
])
def test_the_end_of_a_file(tmp_path, data, complete, text, next_offset):
    path = tmp_path / "job-1.log"
    path.write_bytes(data)
    chunk = read_log(path, 0, 100, complete)
    assert (chunk.text, chunk.next_offset) == (text, next_offset)


def test_an_offset_inside_a_character_starts_after_it_and_a_missing_file_is_empty(tmp_path):
    path = tmp_path / "job-1.log"
    path.write_bytes("日本".encode())
    chunk = read_log(path, 1, 100, True)
    assert (chunk.offset, chunk.text) == (3, "本")
    missing = read_log(tmp_path / "job-2.log", 5, 100, True)
    assert (missing.exists, missing.text, missing.next_offset, missing.size) == (False, "", 5, 0)
