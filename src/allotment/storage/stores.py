"""Where a folder's files are: a directory of the server or a prefix of an S3 bucket, behind one small interface.

Files stream both ways: an upload is spooled to a temporary file chunk by chunk by the route (its size known before
it is stored, so capacity can be checked), then moved into place (local) or sent as a multipart upload (S3, boto3's
managed transfer); a download is read and sent in chunks. Nothing reads a whole file into memory.

A folder's files are under `<root>/<folder id>/` (local) or `folders/<folder id>/` in the bucket (S3).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from allotment.errors import invalid

CHUNK = 256 * 1024
MAX_PATH = 1024
# A local folder's directories and files are open to every uid: jobs with a mount run under uids of their own and
# must read (and, read-write, change) them. Only the server reaches them by path: the host's root is 0700 (under the
# data directory by default); a job sees one folder, through its mount.
SHARED_DIR, SHARED_FILE = 0o777, 0o666


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the folder, '/'-separated
    size: int
    modified: datetime | None
    is_dir: bool = False


class StoreError(Exception):
    """The storage host refused or could not be reached; the message says what it answered."""


def clean_path(path: str, field: str = "path", allow_root: bool = False) -> str:
    """A file's path inside a folder: relative, '/'-separated, no '.' or '..' parts, no empty parts."""
    text = (path or "").strip().strip("/")
    if not text:
        if allow_root:
            return ""
        raise invalid(field, "must name a file inside the folder")
    if len(text) > MAX_PATH or "\x00" in text or "\\" in text:
        raise invalid(field, f"must be at most {MAX_PATH} characters, without NUL or backslashes")
    parts = text.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise invalid(field, "may not contain '.' or '..' parts or empty parts")
    return text


class LocalStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def folder_dir(self, folder_id: int) -> Path:
        return self.root / str(int(folder_id))

    def _file(self, folder_id: int, path: str) -> Path:
        target = self.folder_dir(folder_id) / path
        base = self.folder_dir(folder_id).resolve()
        if base != target.resolve() and base not in target.resolve().parents:  # a symbolic link a job left
            raise invalid("path", "points outside the folder")
        return target

    def _ensure_root(self) -> None:
        if not self.root.exists():  # reachable by the server only: jobs see a folder through its mount
            self.root.mkdir(parents=True, mode=0o700)

    def create(self, folder_id: int) -> None:
        self._ensure_root()
        path = self.folder_dir(folder_id)
        path.mkdir(exist_ok=True)
        os.chmod(path, SHARED_DIR)

    def list(self, folder_id: int, prefix: str = "") -> list[Entry]:
        base = self.folder_dir(folder_id)
        start = self._file(folder_id, prefix) if prefix else base
        if not start.is_dir():
            return []
        out = []
        for item in sorted(start.iterdir()):
            st = item.lstat()
            rel = item.relative_to(base).as_posix()
            is_dir = item.is_dir() and not item.is_symlink()
            out.append(Entry(rel, 0 if is_dir else st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), is_dir))
        return out

    def usage(self, folder_id: int) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.folder_dir(folder_id)):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

    def size_of(self, folder_id: int, path: str) -> int | None:
        target = self._file(folder_id, path)
        return target.stat().st_size if target.is_file() else None

    def put(self, folder_id: int, path: str, spooled: Path) -> None:
        target = self._file(folder_id, path)
        if target.is_dir():
            raise invalid("path", "is a directory in the folder")
        base = self.folder_dir(folder_id)
        for parent in reversed(target.relative_to(base).parents[:-1]):
            directory = base / parent
            if not directory.exists():
                directory.mkdir()
                os.chmod(directory, SHARED_DIR)
        shutil.move(spooled, target)
        os.chmod(target, SHARED_FILE)

    def read(self, folder_id: int, path: str) -> Iterator[bytes]:
        target = self._file(folder_id, path)
        if not target.is_file():
            raise FileNotFoundError(path)
        handle = open(target, "rb")  # noqa: SIM115 - closed by the generator

        def chunks() -> Iterator[bytes]:
            with handle:
                while block := handle.read(CHUNK):
                    yield block
        return chunks()

    def delete(self, folder_id: int, path: str) -> bool:
        target = self._file(folder_id, path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
            return True
        if target.exists() or target.is_symlink():
            target.unlink()
            return True
        return False

    def purge(self, folder_id: int) -> None:
        shutil.rmtree(self.folder_dir(folder_id), ignore_errors=True)

    def check(self) -> None:
        self._ensure_root()
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"the directory {self.root} is not writable by the server")


class S3Store:
    """An S3-compatible bucket through boto3 (path-style addressing, which every S3-compatible server answers)."""

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str | None = None):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=region or "us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=5,
                          read_timeout=30))

    @staticmethod
    def _prefix(folder_id: int) -> str:
        return f"folders/{int(folder_id)}/"

    def _call(self, fn, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(str(error.get("Key") or "")) from None
            raise StoreError(f"the S3 server refused: {error.get('Code')}: {error.get('Message')}") from None
        except BotoCoreError as exc:
            raise StoreError(f"the S3 server could not be reached: {exc}") from None

    def create(self, folder_id: int) -> None:
        self.check()

    def _objects(self, prefix: str) -> Iterator[dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StoreError(f"the S3 server refused: {error.get('Code')}: {error.get('Message')}") from None
        except BotoCoreError as exc:
            raise StoreError(f"the S3 server could not be reached: {exc}") from None

    def list(self, folder_id: int, prefix: str = "") -> list[Entry]:
        base = self._prefix(folder_id)
        start = base + (prefix + "/" if prefix else "")
        files, dirs = [], set()
        for obj in self._objects(start):
            rest = obj["Key"][len(start):]
            if "/" in rest:
                dirs.add(rest.split("/", 1)[0])
            elif rest:
                files.append(Entry(obj["Key"][len(base):], int(obj["Size"]), obj.get("LastModified")))
        entries = [Entry((prefix + "/" if prefix else "") + d, 0, None, True) for d in sorted(dirs)]
        return sorted(entries + files, key=lambda e: e.path)

    def usage(self, folder_id: int) -> int:
        return sum(int(o["Size"]) for o in self._objects(self._prefix(folder_id)))

    def size_of(self, folder_id: int, path: str) -> int | None:
        try:
            head = self._call(self.client.head_object, Bucket=self.bucket, Key=self._prefix(folder_id) + path)
        except FileNotFoundError:
            return None
        return int(head["ContentLength"])

    def put(self, folder_id: int, path: str, spooled: Path) -> None:
        self._call(self.client.upload_file, str(spooled), self.bucket, self._prefix(folder_id) + path)

    def read(self, folder_id: int, path: str) -> Iterator[bytes]:
        answer = self._call(self.client.get_object, Bucket=self.bucket, Key=self._prefix(folder_id) + path)
        return answer["Body"].iter_chunks(CHUNK)

    def delete(self, folder_id: int, path: str) -> bool:
        keys = [o["Key"] for o in self._objects(self._prefix(folder_id) + path + "/")]
        if self.size_of(folder_id, path) is not None:
            keys.append(self._prefix(folder_id) + path)
        self._delete_keys(keys)
        return bool(keys)

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            self._call(self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def purge(self, folder_id: int) -> None:
        self._delete_keys([o["Key"] for o in self._objects(self._prefix(folder_id))])

    def check(self) -> None:
        self._call(self.client.head_bucket, Bucket=self.bucket)
