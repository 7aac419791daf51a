"""Files behind paths and URIs: local disk, `s3://`, `gs://` (pyarrow's filesystems) and
`http(s)://` (requests).  Transient failures are retried by each library's own retry
machinery: the AWS SDK's standard retry strategy for S3, the GCS client's retry time
limit, urllib3's `Retry` (with exponential backoff) for HTTP.

S3 settings come from the usual AWS environment: credentials, `AWS_REGION` /
`AWS_DEFAULT_REGION`, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for S3-compatible
servers such as MinIO.
"""

from __future__ import annotations

import functools
import os
import posixpath
from dataclasses import dataclass
from urllib.parse import urlparse

from pyarrow import fs

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a read before giving up on it."""

    attempts: int = 5
    backoff_s: float = 0.5  # first wait; doubles per attempt (HTTP)
    timeout_s: float = 60.0  # per HTTP request


DEFAULT_RETRY = RetryPolicy()


def is_uri(path: str) -> bool:
    return "://" in path


def is_http(path: str) -> bool:
    return path.startswith(("http://", "https://"))


@functools.lru_cache(maxsize=16)
def _s3(attempts: int) -> fs.S3FileSystem:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs = {"retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=attempts),
              "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or "us-east-1"}
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs |= {"endpoint_override": parsed.netloc or parsed.path,
                   "scheme": parsed.scheme or "https"}
    return fs.S3FileSystem(**kwargs)


@functools.lru_cache(maxsize=16)
def _gcs(retry_s: float) -> fs.GcsFileSystem:
    from datetime import timedelta

    return fs.GcsFileSystem(retry_time_limit=timedelta(seconds=retry_s))


def filesystem(path: str, retry: RetryPolicy = DEFAULT_RETRY) -> tuple[fs.FileSystem, str]:
    """The pyarrow filesystem for a local path or an s3:// / gs:// URI, and the path in it."""
    if not is_uri(path):
        return fs.LocalFileSystem(), os.path.abspath(path)
    scheme, rest = path.split("://", 1)
    if scheme in ("s3", "s3a"):
        return _s3(retry.attempts), rest
    if scheme in ("gs", "gcs"):
        return _gcs(retry.attempts * retry.timeout_s), rest
    if scheme == "file":
        return fs.LocalFileSystem(), rest
    raise ValueError(f"{path}: unsupported URI scheme {scheme!r} (use a local path, s3://, "
                     "gs:// or http(s)://)")


@functools.lru_cache(maxsize=4)
def _http_session(retry: RetryPolicy):
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    policy = Retry(total=retry.attempts - 1, backoff_factor=retry.backoff_s,
                   status_forcelist=(408, 429, 500, 502, 503, 504),
                   allowed_methods=("GET", "HEAD"), raise_on_status=False)
    adapter = HTTPAdapter(max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class ReadError(OSError):
    """A file that could not be read (after retries); the message names it."""


def read_bytes(path: str, retry: RetryPolicy = DEFAULT_RETRY) -> bytes:
    """The whole content of a file behind a path or URI."""
    if is_http(path):
        import requests

        try:
            response = _http_session(retry).get(path, timeout=retry.timeout_s)
        except requests.RequestException as exc:
            raise ReadError(f"unreachable after {retry.attempts} attempts: {exc}") from exc
        if response.status_code >= 400:
            raise ReadError(f"HTTP {response.status_code} {response.reason}")
        return response.content
    filesystem_, inner = filesystem(path, retry)
    try:
        with filesystem_.open_input_stream(inner) as f:
            return f.read()
    except FileNotFoundError as exc:
        raise ReadError("no such file") from exc
    except OSError as exc:
        raise ReadError(f"cannot read: {exc}") from exc


def join(base: str, *parts: str) -> str:
    """Join path segments for local paths and URIs alike."""
    if is_uri(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if is_uri(path) else os.path.dirname(path)


def to_uri(fs_path: str, like: str) -> str:
    """Turn a path inside a filesystem back into a URI of the same kind as `like`."""
    if is_uri(like):
        return f"{like.split('://', 1)[0]}://{fs_path}"
    return fs_path


def list_images(folder: str, retry: RetryPolicy = DEFAULT_RETRY) -> list[str]:
    """Every image file under `folder`, recursively, sorted (hidden entries skipped)."""
    filesystem_, inner = filesystem(folder, retry)
    infos = filesystem_.get_file_info(fs.FileSelector(inner, recursive=True))
    found = []
    for info in infos:
        rel = info.path[len(inner.rstrip("/")) + 1:]
        if info.type != fs.FileType.File or any(p.startswith(".") for p in rel.split("/")):
            continue
        if info.path.lower().endswith(IMAGE_EXTENSIONS):
            found.append(to_uri(info.path, folder))
    return sorted(found)


def path_type(path: str, retry: RetryPolicy = DEFAULT_RETRY) -> fs.FileType:
    filesystem_, inner = filesystem(path, retry)
    return filesystem_.get_file_info(inner).type


def file_size(path: str, retry: RetryPolicy = DEFAULT_RETRY) -> int | None:
    """Size of a file in bytes; None for http(s) inputs, which are not listed."""
    if is_http(path):
        return None
    filesystem_, inner = filesystem(path, retry)
    return filesystem_.get_file_info(inner).size
