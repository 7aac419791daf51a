from scalecap_ray.io.records import order_key, record_row, stable_id


def row(record, source="/data/set/in.jsonl", line=3, image_key="image", id_key=None):
    return record_row(record, source, line, 2, image_key, id_key)


def test_relative_paths_resolve_against_the_input_folder():
    r = row({"image": "imgs/a.png"})
    assert r["image"] == "imgs/a.png" and r["image_uri"] == "/data/set/imgs/a.png"
    assert r["id"] == stable_id("/data/set/imgs/a.png") and r["error"] is None
    assert (r["source"], r["line"], r["order"]) == ("/data/set/in.jsonl", 3, order_key(2, 3))
    uri = row({"image": "x/b.jpg"}, source="s3://bucket/sets/in.jsonl")
    assert uri["image_uri"] == "s3://bucket/sets/x/b.jpg"


def test_absolute_paths_and_uris_are_kept():
    assert row({"image": "/abs/a.png"})["image_uri"] == "/abs/a.png"
    assert row({"image": "https://h/a.png"})["image_uri"] == "https://h/a.png"


def test_a_list_of_images_takes_the_first():
    assert row({"image": ["a.png", "b.png"]})["image_uri"] == "/data/set/a.png"


def test_bytes_are_carried_with_a_row_reference():
    r = row({"img": b"\x89PNG..."}, source="/d/t.parquet", line=7, image_key="img")
    assert r["image_data"] == b"\x89PNG..." and r["image_uri"] == "/d/t.parquet#row=7"
    assert r["image"] == "t.parquet#row=7" and r["id"] == stable_id("/d/t.parquet#row=7")


def test_custom_id():
    assert row({"path": "a.png", "uid": 17}, image_key="path", id_key="uid")["id"] == "17"


def test_unusable_records_become_read_errors_naming_file_and_line():
    for record, message in [([1, 2], "expected a JSON object"),
                            ({"img": "a.png"}, "field 'image' must be"),
                            ({"image": ""}, "field 'image' must be"),
                            ({"image": None}, "field 'image' must be")]:
        r = row(record)
        assert r["error"].startswith("/data/set/in.jsonl:3: ") and message in r["error"]
        assert r["error_stage"] == "read" and r["id"]
    missing_id = row({"image": "a.png"}, id_key="uid")
    assert "id field 'uid' is missing" in missing_id["error"]
