"""The landing zone: where upstream systems drop one batch per source per day.

Layout, identical on a local directory and on S3::

    <landing_uri>/<source>/<YYYY-MM-DD>/<file>.csv

A batch for (source, day) is every file in that day's folder whose name matches the
source's pattern (``*.csv`` unless configured), read in name order; anything else there
(a ``README.txt``, a ``.DS_Store``, a sub-folder) is listed as ignored, never read. S3 is
reached through boto3 exactly as on AWS (``AWS_ENDPOINT_URL`` points it elsewhere).

Source names and file names become path segments, so both are checked before any path is
built: a name with ``/``, ``..`` or other non-identifier characters is refused.

This module only lists, reads and writes bytes. It never parses or validates a batch.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


#: What a source name may be: it names a landing folder and the tables of the source.
SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: The pattern a source's batch files match unless its use-case file says otherwise.
DEFAULT_PATTERN = "*.csv"


def check_source_name(source: str) -> str:
    """``source`` if it is a lowercase identifier; otherwise a ValueError that says what to use."""
    if not isinstance(source, str) or not SOURCE_NAME.fullmatch(source):
        raise ValueError(
            f"source name {source!r} is not a lowercase identifier (letters, digits, underscores, starting with a "
            "letter): it names the landing folder and the tables, so '/', '..' or other characters are refused. "
            "Rename the source in the use-case file (config/<use case>.yaml, key `sources`)"
        )
    return source


def check_file_name(name: str) -> str:
    """``name`` if it is one plain path segment (no ``/``, ``\\``, ``..`` or NUL); otherwise a ValueError."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise ValueError(
            f"landed file name {name!r} is not a plain file name: a file lands inside its day folder, so '/', "
            "'\\', '..' and NUL are refused. Land it under a plain name such as 'export_2026-01-03.csv'"
        )
    return name


def check_pattern(pattern: str) -> str:
    """``pattern`` if it is a glob on a file name (e.g. ``*.csv``); otherwise a ValueError."""
    plain = isinstance(pattern, str) and pattern.strip() and not pattern.startswith(".")
    if not plain or "/" in pattern or "\\" in pattern:
        raise ValueError(
            f"file pattern {pattern!r} is not a glob on a file name: give one such as '*.csv' or 'orders_*.csv' "
            "(no '/', not starting with '.', which marks hidden and in-flight files)"
        )
    return pattern


def matches(name: str, pattern: str) -> bool:
    """Whether a landed file ``name`` belongs to the batch: not hidden, and matching ``pattern`` (case-sensitive)."""
    return not name.startswith(".") and fnmatch.fnmatchcase(name, pattern)


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
        return f"{self.uri}/{check_source_name(source)}/{day.isoformat()}/"

    def list_batch(self, source: str, day: date, pattern: str = "*") -> list[LandedFile]:
        """Files landed for (source, day) that match ``pattern``, sorted by name; hidden files never count."""
        return self.list_day(source, day, pattern)[0]

    def list_day(self, source: str, day: date, pattern: str = "*") -> tuple[list[LandedFile], list[str]]:
        """(the batch's files, the names of everything else in the day folder), both sorted by name.

        The batch is the files matching ``pattern`` (hidden ones never do); the rest, sub-folders
        included (named with a trailing ``/``), are ignored and only reported.
        """
        check_pattern(pattern)
        files, folders = self._list_s3(self._key(source, day, "")) if self.is_s3 else self._list_local(source, day)
        batch = [f for f in files if matches(f.name, pattern)]
        ignored = sorted([f.name for f in files if not matches(f.name, pattern)] + [f"{d}/" for d in folders])
        return batch, ignored

    def _list_local(self, source: str, day: date) -> tuple[list[LandedFile], list[str]]:
        folder = self._root / check_source_name(source) / day.isoformat()
        if not folder.is_dir():
            return [], []
        files, folders = [], []
        for path in sorted(folder.iterdir()):
            if path.is_dir():
                folders.append(path.name)
            elif path.is_file():
                stat = path.stat()
                files.append(LandedFile(str(path), path.name, stat.st_size, f"{stat.st_size}-{stat.st_mtime_ns}"))
        return files, folders

    def read_bytes(self, file: LandedFile) -> bytes:
        """The whole content of one landed file."""
        if self.is_s3:
            key = urlparse(file.uri).path.lstrip("/")
            return self._s3().get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return Path(file.uri).read_bytes()

    def write_bytes(self, source: str, day: date, name: str, data: bytes) -> str:
        """Land one file atomically (a reader never sees half of it); returns its URI."""
        check_file_name(name)
        if self.is_s3:
            key = self._key(source, day, name)
            self._s3().put_object(Bucket=self._bucket, Key=key, Body=data)
            return f"s3://{self._bucket}/{key}"
        folder = self._root / check_source_name(source) / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".landing-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        target = folder / name
        os.replace(tmp, target)
        return str(target)

    def _key(self, source: str, day: date, name: str) -> str:
        parts = [p for p in (self._prefix, check_source_name(source), day.isoformat()) if p]
        return "/".join(parts) + "/" + name

    def _list_s3(self, prefix: str) -> tuple[list[LandedFile], list[str]]:
        paginator = self._s3().get_paginator("list_objects_v2")
        files, folders = [], []
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix):]
                if not name:  # the folder's own placeholder object
                    continue
                files.append(
                    LandedFile(f"s3://{self._bucket}/{obj['Key']}", name, obj["Size"], obj["ETag"].strip('"'))
                )
            folders += [p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(files, key=lambda f: f.name), sorted(folders)

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
