"""A flood of password logins cannot starve the API: argon2 verifications run a bounded number at a time, off the
event loop, and a login that cannot get a turn soon is answered 429 with Retry-After instead of queuing."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from user_helpers import API, login

from allotment.api.app import create_app
from allotment.errors import DomainError
from allotment.identity import throttle
from conftest import ADMIN_PASSWORD, make_settings

HASH_S = 0.2  # each verification is made to take this long


@pytest.fixture
def slow_argon2(monkeypatch) -> dict[str, int]:
    """argon2 verifications that take HASH_S each, counting how many run at the same time."""
    seen = {"now": 0, "most": 0, "total": 0}
    lock = threading.Lock()
    real = PasswordHasher.verify

    def slow(self, hash_, password):
        with lock:
            seen["now"] += 1
            seen["total"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            time.sleep(HASH_S)
            return real(self, hash_, password)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(PasswordHasher, "verify", slow)
    return seen


def test_concurrent_logins_never_exceed_the_bound_and_the_excess_gets_429(tmp_path, backend, slow_argon2):
    # Per-source limits out of the way: this is the flood of many sources that only the bound stops.
    settings = make_settings(tmp_path, backend, password_checks_concurrency=2, password_check_wait_s=0.3,
                             login_failures_burst=1000)
    app = create_app(settings)
    with TestClient(app) as client:
        headers = login(client, "admin", ADMIN_PASSWORD)
        slow_argon2.update(most=0, total=0)

        def bad_login(i: int):
            return client.post(f"{API}/auth/login", json={"username": f"flood{i}", "password": "Wr0ng-pass!"})

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(bad_login, i) for i in range(16)]
            # While the flood is being refused, authenticated requests are answered.
            assert client.get(f"{API}/jobs", headers=headers).status_code == 200
            answers = [f.result() for f in futures]
    statuses = sorted(r.status_code for r in answers)
    assert slow_argon2["most"] <= 2, slow_argon2
    assert statuses.count(401) == slow_argon2["total"] >= 2
    busy = [r for r in answers if r.status_code == 429]
    assert busy, statuses
    assert all(r.json()["code"] == "login_busy" and int(r.headers["Retry-After"]) >= 1 for r in busy)


def test_the_gate_waits_a_little_then_refuses():
    gate = throttle.PasswordGate(concurrency=1, wait_s=0.05)

    async def scenario():
        async with gate.turn():
            started = time.monotonic()
            with pytest.raises(DomainError) as refused:
                async with gate.turn():
                    pass
            waited = time.monotonic() - started
        async with gate.turn():  # free again once the first turn ended
            pass
        return refused.value, waited

    refused, waited = asyncio.run(scenario())
    assert refused.status == 429 and refused.headers["Retry-After"] == "1"
    assert 0.04 <= waited < 1.0


def test_the_default_bound_leaves_a_core_for_the_api(monkeypatch):
    monkeypatch.setattr(throttle.os, "cpu_count", lambda: 8)
    assert throttle.default_password_checks() == 7
    monkeypatch.setattr(throttle.os, "cpu_count", lambda: 2)
    assert throttle.default_password_checks() == 1
    monkeypatch.setattr(throttle.os, "cpu_count", lambda: None)
    assert throttle.default_password_checks() == 1
