"""Inputs end to end through the caption job (real Ray, real engine): every kind of bad
input yields its error row while the rest complete, image folders, and S3 in and out."""

import io
import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.conftest import EXAMPLES, REPO
from tests.servers import free_port
from tests.test_cli import run_cli

pytestmark = pytest.mark.engine
FAST_RETRIES = ["--set", "input.read_attempts=3", "--set", "input.retry_backoff_s=0.01",
                "--set", "input.read_timeout_s=5"]


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_bad_input_matrix(tmp_path, http_server):
    src = tmp_path / "in"
    shutil.copytree(EXAMPLES / "images", src / "images")
    bad = src / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "truncated.png").write_bytes((EXAMPLES / "images" / "boat.png").read_bytes()[:150])
    (bad / "notes.png").write_text("these are notes, not pixels")
    (bad / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (bad / "huge.png").write_bytes(png(Image.new("L", (2500, 2500))))
    (bad / "thin.png").write_bytes(png(Image.new("RGB", (2000, 4), "red")))
    good = [json.loads(x)["image"] for x in (EXAMPLES / "images.jsonl").read_text().splitlines()]
    cases = {  # image reference -> (error_stage, what the error must say)
        "images/missing.png": ("load", "no such file"),
        "bad/empty.png": ("load", "empty file"),
        "bad/truncated.png": ("load", "not a decodable image"),
        "bad/notes.png": ("load", "not a decodable image"),
        "bad/drawing.svg": ("load", "not a decodable image"),
        "bad/huge.png": ("load", "over the limit of 4000000"),
        "bad/thin.png": ("load", "aspect ratio is over"),
        f"http://127.0.0.1:{free_port()}/gone.png": ("load", "unreachable after 3 attempts"),
        f"{http_server.url}/forbidden/images/boat.png": ("load", "HTTP 403"),
    }
    fine_remote = [f"{http_server.url}/images/boat.png",
                   f"{http_server.url}/flaky/images/car_and_lamp.png"]  # 503 twice, then served
    lines = [json.dumps({"image": p}) for p in good + list(cases) + fine_remote]
    lines.insert(3, "{this line is not json")
    lines.append(json.dumps({"image": good[0]}))  # a duplicate of the first row
    (src / "input.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    proc = run_cli("caption", "--smoke", "--input", str(src / "input.jsonl"), "--output",
                   str(out), "--set", "image.pixel_limit=4000000", *FAST_RETRIES)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(lines)  # rows in == rows out
    assert len({r["id"] for r in rows}) == len(rows)
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    for ref, (stage, message) in cases.items():
        (row,) = by_image[ref]
        assert row["error_stage"] == stage and message in row["error"], (ref, row["error"])
        assert row["caption"] is None
    for ref in good + fine_remote:
        assert all(r["caption"] for r in by_image[ref] if r["error"] is None), ref
    assert sum(r["error"] is None for r in rows) == len(good) + len(fine_remote)
    (broken,) = [r for r in rows if r["image"] is None]
    assert broken["error_stage"] == "read" and f"{src / 'input.jsonl'}:4: not valid JSON" \
        in broken["error"]
    first, dup = sorted(by_image[good[0]], key=lambda r: r["line"])
    assert first["error"] is None and dup["error_stage"] == "read"
    assert f"duplicate id {first['id']!r}, first at {src / 'input.jsonl'}:1" in dup["error"]
    assert dup["id"].startswith(first["id"] + "#dup-")


def test_image_folder_input_and_loading_example(tmp_path):
    src = tmp_path / "photos"
    shutil.copytree(EXAMPLES / "images", src / "nested" / "deeper")
    (src / "nested" / "readme.txt").write_text("not an image")
    out = tmp_path / "out"
    proc = run_cli("caption", "--smoke", "--input", str(src), "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["image"] for r in rows) == sorted(
        f"nested/deeper/{p.name}" for p in (EXAMPLES / "images").iterdir())
    assert all(r["caption"] and r["error"] is None for r in rows)
    # The dataloader example reads this output three ways.
    example = subprocess.run([sys.executable, str(REPO / "examples" / "read_output.py"),
                              str(out)], capture_output=True, text=True, timeout=300)
    assert example.returncode == 0, example.stderr[-3000:]
    for line in ["torch DataLoader: 6 captions", "ray iter_torch_batches: 6 rows",
                 "datasets: 6 rows"]:
        assert line in example.stdout


def test_s3_parquet_bytes_in_and_s3_out(s3_server, s3_bucket, tmp_path):
    images = [p.read_bytes() for p in sorted((EXAMPLES / "images").iterdir())]
    buf = io.BytesIO()
    pq.write_table(pa.table({"jpg": pa.array([*images, b"garbage"], pa.binary()),
                             "key": [f"k{i}" for i in range(len(images) + 1)]}), buf)
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="in/set.parquet", Body=buf.getvalue())
    out = f"s3://{s3_bucket}/runs/a"
    proc = run_cli("caption", "--smoke", "--input", f"s3://{s3_bucket}/in/set.parquet",
                   "--image-key", "jpg", "--id-key", "key", "--output", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    export = run_cli("export", out)
    assert export.returncode == 0, export.stderr
    records = [json.loads(x) for x in export.stdout.splitlines()]
    assert sorted(r["id"] for r in records) == [f"k{i}" for i in range(len(images) + 1)]
    by_id = {r["id"]: r for r in records}
    assert all(by_id[f"k{i}"]["caption"] for i in range(len(images)))
    assert "not a decodable image" in by_id[f"k{len(images)}"]["error"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket,
                                                     Prefix="runs/a/")["Contents"]]
    assert "runs/a/_scalecap_run.json" in keys
