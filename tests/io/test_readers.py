import json

from scalecap_ray.config import InputSettings
from scalecap_ray.io.readers import parse_record, stable_id


def test_relative_paths_resolve_against_the_jsonl_folder():
    row = parse_record('{"image": "imgs/a.png"}', "/data/set/in.jsonl", InputSettings())
    assert row["image"] == "imgs/a.png"
    assert row["image_uri"] == "/data/set/imgs/a.png"
    assert row["id"] == stable_id("/data/set/imgs/a.png") and row["error"] is None


def test_absolute_paths_and_uris_are_kept():
    s = InputSettings()
    assert parse_record('{"image": "/abs/a.png"}', "/x/in.jsonl", s)["image_uri"] == "/abs/a.png"
    assert parse_record('{"image": "s3://b/a.png"}', "/x/in.jsonl", s)["image_uri"] == "s3://b/a.png"


def test_a_list_of_images_takes_the_first():
    row = parse_record(json.dumps({"image": ["a.png", "b.png"]}), "/x/in.jsonl", InputSettings())
    assert row["image_uri"] == "/x/a.png"


def test_custom_keys():
    s = InputSettings(image_key="path", id_key="uid")
    row = parse_record('{"path": "a.png", "uid": 17}', "/x/in.jsonl", s)
    assert row["id"] == "17" and row["image_uri"] == "/x/a.png"
    missing = parse_record('{"path": "a.png"}', "/x/in.jsonl", s)
    assert "id field 'uid' is missing" in missing["error"] and missing["error_stage"] == "read"


def test_bad_lines_become_error_rows():
    s = InputSettings()
    for line, message in [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object"),
                          ('{"img": "a.png"}', "field 'image' must be"),
                          ('{"image": ""}', "field 'image' must be")]:
        row = parse_record(line, "/x/in.jsonl", s)
        assert message in row["error"] and "/x/in.jsonl" in row["error"]
        assert row["error_stage"] == "read" and row["id"]
