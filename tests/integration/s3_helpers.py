"""A real S3 server for the storage tests: SeaweedFS's `weed mini` (scripts/ensure-s3.sh installs it), started once
per test process with a credentials file, so a wrong secret is refused by the server itself, not by a mock.

It listens on loopback only, on ports picked free for this process (each of weed's HTTP ports also takes the port
10000 above it for gRPC), and keeps everything under one temporary directory removed at exit."""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACCESS_KEY = "ALLOTTESTKEY"
SECRET_KEY = "allot-test-secret-0123456789"
BUCKET = "allot-folders"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str


_started: list[S3Server] = []


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(12000, 21000)
        if port not in chosen and _free(port) and _free(port + 10000):
            chosen.append(port)
    return chosen


def _wait(endpoint: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                                 retries={"max_attempts": 1}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini stopped: {log.read_text()[-2000:]}")
        try:
            client.create_bucket(Bucket=BUCKET)
            return
        except (BotoCoreError, ClientError) as exc:  # not up yet, or the bucket exists
            if "BucketAlreadyOwnedByYou" in str(exc) or "BucketAlreadyExists" in str(exc):
                return
            time.sleep(0.3)
    raise RuntimeError(f"weed mini did not answer within {timeout} s: {log.read_text()[-2000:]}")


def start_s3() -> S3Server:
    if _started:
        return _started[0]
    # The virtualenv running the tests is the one to install into (scripts/ensure-s3.sh).
    weed = subprocess.run([str(ROOT / "scripts" / "ensure-s3.sh")], capture_output=True, text=True, check=True,
                          env={**os.environ, "ALLOT_VENV": sys.prefix}).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="allot-s3-"))
    config = work / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    master, volume, filer, s3, admin = _ports(5)
    log = work / "weed.log"
    (work / "data").mkdir()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [weed, "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={work / 'data'}", f"-s3.config={config}",
             f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", f"-s3.port={s3}",
             f"-admin.port={admin}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    atexit.register(stop)
    endpoint = f"http://127.0.0.1:{s3}"
    _wait(endpoint, proc, log)
    _started.append(S3Server(endpoint, ACCESS_KEY, SECRET_KEY, BUCKET))
    return _started[0]


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    return start_s3()
