"""The "test connection" action of a storage target: it tries the real service with the target's credentials and
reports the service's own error. S3 and MinIO: boto3's HeadBucket. GCS: google-auth signs in as the service account
and reads the bucket's metadata through the JSON API. Git: `git ls-remote` with the token. Folder: the path is a
directory the server can list."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from allotment.storage.targets_models import StorageTarget

TIMEOUT_S = 15


def probe(target: StorageTarget, secrets: dict[str, str]) -> str | None:
    """None when the service answered as it should; otherwise what went wrong, in the service's words."""
    return {"s3": _s3, "gcs": _gcs, "git": _git, "folder": _folder}[target.kind](target, secrets)


def _s3(target: StorageTarget, secrets: dict[str, str]) -> str | None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3", endpoint_url=target.endpoint or None, aws_access_key_id=target.access_key,
        aws_secret_access_key=secrets.get("secret_key", ""), region_name=target.region or "us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=5,
                      read_timeout=TIMEOUT_S))
    try:
        # ListObjectsV2 rather than HeadBucket: a HEAD has no body, so the server's reason (wrong key, bad
        # signature) would be lost.
        client.list_objects_v2(Bucket=target.bucket, MaxKeys=1)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return f"the S3 server refused: {error.get('Code')}: {error.get('Message') or 'no message'}"
    except BotoCoreError as exc:
        return f"the S3 server could not be reached: {exc}"
    return None


def _gcs(target: StorageTarget, secrets: dict[str, str]) -> str | None:
    import json

    import google.auth.exceptions
    import google.auth.transport.requests
    import requests
    from google.oauth2 import service_account

    try:
        credentials = service_account.Credentials.from_service_account_info(
            json.loads(secrets.get("service_account_json") or "{}"),
            scopes=["https://www.googleapis.com/auth/devstorage.read_only"])
        session = google.auth.transport.requests.AuthorizedSession(credentials)
        answer = session.get(f"https://storage.googleapis.com/storage/v1/b/{target.bucket}", timeout=TIMEOUT_S)
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        return f"Google Cloud refused the service account: {exc}"
    except requests.RequestException as exc:
        return f"Google Cloud Storage could not be reached: {exc}"
    if answer.status_code != 200:
        try:
            message = answer.json().get("error", {}).get("message")
        except ValueError:
            message = answer.text[:300]
        return f"Google Cloud Storage answered {answer.status_code}: {message}"
    return None


def _git(target: StorageTarget, secrets: dict[str, str]) -> str | None:
    argv = ["git"]
    token = secrets.get("token")
    if token:  # GitHub, GitLab and Gitea take a token as the password of HTTP basic authentication
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        argv += ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    argv += ["ls-remote", "--heads", "--", target.repository_url or ""]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false",
           "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=10", "HOME": "/nonexistent"}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return "git is not installed on the server"
    except subprocess.TimeoutExpired:
        return f"the repository did not answer within {TIMEOUT_S} s"
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        return f"git could not read the repository: {message.replace(token, '********') if token else message}"
    return None


def _folder(target: StorageTarget, secrets: dict[str, str]) -> str | None:
    path = Path(target.path or "")
    if not path.is_dir():
        return f"{path} is not a directory on this server"
    try:
        next(path.iterdir(), None)
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror}"
    return None
