"""Reading files behind paths and URIs, against real servers on 127.0.0.1."""

import pytest

from scalecap_ray.io import storage
from scalecap_ray.io.storage import ReadError, RetryPolicy
from tests.conftest import EXAMPLES

FAST = RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=5)


def test_local_files_and_folders(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ["x.PNG", "a/y.jpeg", "a/b/z.webp", "a/notes.txt", ".hidden/h.png", "a/.h.png"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"data")
    assert storage.list_images(str(tmp_path)) == sorted(
        str(tmp_path / r) for r in ["x.PNG", "a/y.jpeg", "a/b/z.webp"])
    assert storage.read_bytes(str(tmp_path / "x.PNG")) == b"data"
    with pytest.raises(ReadError, match="no such file"):
        storage.read_bytes(str(tmp_path / "missing.png"))


def test_unsupported_scheme_is_named():
    with pytest.raises(ValueError, match="unsupported URI scheme 'ftp'"):
        storage.filesystem("ftp://host/x.png")


def test_gcs_uris_use_pyarrows_gcs_filesystem():
    from pyarrow import fs

    filesystem, path = storage.filesystem("gs://bucket/dir/x.png")
    assert isinstance(filesystem, fs.GcsFileSystem) and path == "bucket/dir/x.png"


def test_http_reads_retry_transient_errors_only(http_server):
    image = (EXAMPLES / "images" / "boat.png").read_bytes()
    assert storage.read_bytes(f"{http_server.url}/images/boat.png", FAST) == image
    # 503 twice, then the file: urllib3's Retry gets it on the third try.
    assert storage.read_bytes(f"{http_server.url}/flaky/images/boat.png", FAST) == image
    assert http_server.hits["/flaky/images/boat.png"] == 3
    with pytest.raises(ReadError, match="HTTP 500"):
        storage.read_bytes(f"{http_server.url}/broken/images/boat.png", FAST)
    assert http_server.hits["/broken/images/boat.png"] == FAST.attempts
    with pytest.raises(ReadError, match="HTTP 403"):
        storage.read_bytes(f"{http_server.url}/forbidden/images/boat.png", FAST)
    assert http_server.hits["/forbidden/images/boat.png"] == 1  # not retried
    with pytest.raises(ReadError, match="HTTP 404"):
        storage.read_bytes(f"{http_server.url}/images/none.png", FAST)


def test_unreachable_host_fails_after_retries():
    from tests.servers import free_port

    with pytest.raises(ReadError, match="unreachable after 3 attempts"):
        storage.read_bytes(f"http://127.0.0.1:{free_port()}/x.png", FAST)


def test_s3_read_list_and_missing(s3_server, s3_bucket):
    client = s3_server.client()
    image = (EXAMPLES / "images" / "boat.png").read_bytes()
    for key in ["set/a.png", "set/sub/b.jpg", "set/readme.txt"]:
        client.put_object(Bucket=s3_bucket, Key=key, Body=image)
    assert storage.read_bytes(f"s3://{s3_bucket}/set/a.png") == image
    assert storage.list_images(f"s3://{s3_bucket}/set") == [
        f"s3://{s3_bucket}/set/a.png", f"s3://{s3_bucket}/set/sub/b.jpg"]
    with pytest.raises(ReadError, match="no such file"):
        storage.read_bytes(f"s3://{s3_bucket}/set/missing.png")
