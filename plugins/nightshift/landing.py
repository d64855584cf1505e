"""The landing zone: where upstream systems drop one batch per source per day.

Layout, identical on a local directory and on S3::

    <landing_uri>/<source>/<YYYY-MM-DD>/<file>.csv

A batch for (source, day) is every file in that day's folder, read in name order. S3 is
reached through boto3 exactly as on AWS (``AWS_ENDPOINT_URL`` points it elsewhere).

This module only lists, reads and writes bytes. It never parses or validates a batch.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


@dataclass(frozen=True)
class LandedFile:
    """One file of a landed batch."""

    uri: str
    name: str
    size: int
    fingerprint: str  # S3 ETag or local size+mtime: changes when the file is replaced


class Landing:
    """A landing zone rooted at a local directory or an ``s3://bucket/prefix`` URI."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        parsed = urlparse(self.uri)
        self.is_s3 = parsed.scheme == "s3"
        if self.is_s3:
            self._bucket = parsed.netloc
            self._prefix = parsed.path.lstrip("/")
        elif parsed.scheme in ("", "file"):
            self._root = Path(parsed.path if parsed.scheme == "file" else self.uri)
        else:
            raise ValueError(
                f"landing URI {uri!r} has scheme {parsed.scheme!r}: use a local path or s3://bucket/prefix"
            )
        self._client: Any = None

    def batch_location(self, source: str, day: date) -> str:
        """URI of the folder that holds the batch for (source, day)."""
        return f"{self.uri}/{source}/{day.isoformat()}/"

    def list_batch(self, source: str, day: date) -> list[LandedFile]:
        """Files landed for (source, day), sorted by name; empty when nothing has landed."""
        if self.is_s3:
            return self._list_s3(self._key(source, day, ""))
        folder = self._root / source / day.isoformat()
        if not folder.is_dir():
            return []
        files = []
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            stat = path.stat()
            files.append(LandedFile(str(path), path.name, stat.st_size, f"{stat.st_size}-{stat.st_mtime_ns}"))
        return files

    def read_bytes(self, file: LandedFile) -> bytes:
        """The whole content of one landed file."""
        if self.is_s3:
            key = urlparse(file.uri).path.lstrip("/")
            return self._s3().get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return Path(file.uri).read_bytes()

    def write_bytes(self, source: str, day: date, name: str, data: bytes) -> str:
        """Land one file atomically (a reader never sees half of it); returns its URI."""
        if self.is_s3:
            key = self._key(source, day, name)
            self._s3().put_object(Bucket=self._bucket, Key=key, Body=data)
            return f"s3://{self._bucket}/{key}"
        folder = self._root / source / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".landing-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        target = folder / name
        os.replace(tmp, target)
        return str(target)

    def _key(self, source: str, day: date, name: str) -> str:
        parts = [p for p in (self._prefix, source, day.isoformat()) if p]
        return "/".join(parts) + "/" + name

    def _list_s3(self, prefix: str) -> list[LandedFile]:
        paginator = self._s3().get_paginator("list_objects_v2")
        files = []
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix):]
                if not name or name.startswith("."):
                    continue
                files.append(
                    LandedFile(f"s3://{self._bucket}/{obj['Key']}", name, obj["Size"], obj["ETag"].strip('"'))
                )
        return sorted(files, key=lambda f: f.name)

    def _s3(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client


def batch_id(source: str, day: date, contents: list[tuple[str, bytes]]) -> str:
    """A deterministic id for a batch: the same files with the same bytes give the same id."""
    digest = hashlib.sha256(f"{source}|{day.isoformat()}".encode())
    for name, data in contents:
        digest.update(f"|{name}|{len(data)}|".encode())
        digest.update(data)
    return f"{source}-{day.isoformat()}-{digest.hexdigest()[:12]}"
