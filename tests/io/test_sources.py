"""Every input kind, read into rows (no models)."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalecap_ray.config import InputSettings
from scalecap_ray.io.records import stable_id
from scalecap_ray.io.sources import (
    ID_PASS_BYTES,
    InputError,
    InputPlan,
    discover,
    id_partitions,
    image_ids,
    image_rows_batch,
    read_file,
)
from scalecap_ray.io.storage import DEFAULT_RETRY
from tests.conftest import EXAMPLES, drawn_image


def rows_of(path, kind, settings=None):
    tables = list(read_file(str(path), 0, kind, settings or InputSettings(), DEFAULT_RETRY))
    return pa.concat_tables(tables).to_pylist() if tables else []


def test_discover_kinds_and_errors(tmp_path):
    (tmp_path / "in.jsonl").write_text("")
    (tmp_path / "in.parquet").write_bytes(b"")
    (tmp_path / "in.txt").write_text("")
    assert discover(str(tmp_path / "in.jsonl")).kind == "jsonl"
    assert discover(str(tmp_path / "in.parquet")).kind == "parquet"
    images = discover(str(EXAMPLES / "images"))
    assert images.kind == "images" and len(images.files) == 6
    with pytest.raises(InputError, match="no such file or folder"):
        discover(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError, match="unsupported file type"):
        discover(str(tmp_path / "in.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        discover(str(tmp_path / "empty"))


def test_image_ids_are_known_from_the_listing():
    plan = discover(str(EXAMPLES / "images"))
    listing = pa.table({"path": list(plan.files), "n": list(range(1, len(plan.files) + 1))})
    read = image_rows_batch(listing, folder=plan.root).column("id").to_pylist()
    assert image_ids(plan) == read and len(set(read)) == 6
    assert image_ids(plan, limit=2) == read[:2]


def test_id_pass_partitions_follow_the_input_size(tmp_path):
    small = tmp_path / "in.jsonl"
    small.write_text('{"image": "a.png"}\n')
    assert id_partitions(discover(str(small)), DEFAULT_RETRY) == 1
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:  # sparse: the size is what counts
        f.truncate(3 * ID_PASS_BYTES + 1)
    assert id_partitions(discover(str(big)), DEFAULT_RETRY) == 4
    url = "http://127.0.0.1:9/x.jsonl"  # never fetched: an http input is not listed
    assert id_partitions(InputPlan("jsonl", url, (url,)), DEFAULT_RETRY) is None


def test_jsonl_lines_are_numbered_and_bad_lines_kept(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"image": "a.png"}\n\n{broken\n{"image": "b.png", "id": 5}\n'
                     b'{"image": "\xff\xfe"}\n[1]\n')
    rows = rows_of(path, "jsonl")
    assert [r["line"] for r in rows] == [1, 3, 4, 5, 6]  # the blank line 2 is no record
    assert rows[0]["image_uri"] == str(tmp_path / "a.png") and rows[0]["error"] is None
    assert rows[1]["error"].startswith(f"{path}:3: not valid JSON")
    assert rows[2]["error"] is None
    assert "not valid JSON" in rows[3]["error"]  # invalid UTF-8
    assert "expected a JSON object" in rows[4]["error"]
    assert all(r["error_stage"] == "read" for r in rows if r["error"])


def test_json_array(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps([{"image": "a.png", "k": 1}, {"image": ["b.png", "c.png"]}]))
    rows = rows_of(path, "json", InputSettings(id_key="k"))
    assert rows[0]["id"] == "1" and rows[0]["image_uri"] == str(tmp_path / "a.png")
    assert "id field 'k' is missing" in rows[1]["error"]
    rows = rows_of(path, "json")
    assert rows[1]["image_uri"] == str(tmp_path / "b.png")  # a list: the first image
    path.write_text('{"image": "a.png"}')
    (bad,) = rows_of(path, "json")
    assert "must hold a list of records" in bad["error"]


def test_parquet_with_paths_and_with_bytes(tmp_path):
    pq.write_table(pa.table({"path": ["x/a.png", "/abs/b.png"], "uid": ["u1", "u2"]}),
                   tmp_path / "paths.parquet")
    rows = rows_of(tmp_path / "paths.parquet", "parquet", InputSettings(image_key="path",
                                                                           id_key="uid"))
    assert [(r["id"], r["image_uri"]) for r in rows] == [
        ("u1", str(tmp_path / "x/a.png")), ("u2", "/abs/b.png")]
    images = [drawn_image(i) for i in range(3)]
    pq.write_table(pa.table({"jpg": pa.array(images, pa.binary())}), tmp_path / "bytes.parquet")
    rows = rows_of(tmp_path / "bytes.parquet", "parquet", InputSettings(image_key="jpg"))
    assert [r["image_data"] for r in rows] == images
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert rows[1]["id"] == stable_id(f"{tmp_path / 'bytes.parquet'}#row=2")


def test_csv(tmp_path):
    with open(tmp_path / "in.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([["image", "caption_hint"], ["a.png", "x"], ["", "y"]])
    rows = rows_of(tmp_path / "in.csv", "csv")
    assert rows[0]["image_uri"] == str(tmp_path / "a.png") and rows[0]["line"] == 2
    assert "field 'image' must be" in rows[1]["error"] and rows[1]["line"] == 3


def test_an_unreadable_file_becomes_one_error_row(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    (row,) = rows_of(tmp_path / "bad.parquet", "parquet")
    assert "cannot read the parquet file" in row["error"] and row["error_stage"] == "read"


def test_s3_jsonl_input(s3_server, s3_bucket):
    s3_server.client().put_object(Bucket=s3_bucket, Key="sets/in.jsonl",
                                  Body=b'{"image": "imgs/a.png"}\n{"image": "s3://o/b.png"}\n')
    plan = discover(f"s3://{s3_bucket}/sets/in.jsonl")
    rows = rows_of(plan.files[0], plan.kind)
    assert [r["image_uri"] for r in rows] == [f"s3://{s3_bucket}/sets/imgs/a.png", "s3://o/b.png"]


def test_http_inputs_must_be_record_files(http_server):
    assert discover(f"{http_server.url}/sets/list.jsonl").kind == "jsonl"
    with pytest.raises(InputError, match=r"must be a \.jsonl"):
        discover(f"{http_server.url}/images/")
