import pyarrow as pa

from scalecap_ray.io.dedupe import hash_ids, prepare
from scalecap_ray.io.records import order_key, record_row, to_table

FILES = ("/in/a.jsonl", "/in/b.jsonl")


def rows(*specs):
    return to_table([record_row({"image": img, "id": rid}, FILES[f], line, f, "image", "id")
                     for f, line, rid, img in specs])


def test_later_duplicates_become_unique_error_rows():
    batch = rows((0, 1, "x", "1.png"), (0, 2, "y", "2.png"), (1, 5, "x", "3.png"))
    out = prepare(batch, firsts={"x": order_key(0, 1)}, done=hash_ids([]), files=FILES)
    got = out.to_pylist()
    assert [r["id"] for r in got] == ["x", "y", f"x#dup-{order_key(1, 5)}"]
    assert got[2]["error"] == "/in/b.jsonl:5: duplicate id 'x', first at /in/a.jsonl:1"
    assert got[2]["error_stage"] == "read" and got[0]["error"] is None


def test_done_rows_are_dropped_including_done_duplicates():
    batch = rows((0, 1, "x", "1.png"), (0, 2, "y", "2.png"), (0, 3, "x", "3.png"))
    dup = f"x#dup-{order_key(0, 3)}"
    out = prepare(batch, firsts={"x": order_key(0, 1)}, done=hash_ids(["x", dup]), files=FILES)
    assert out.column("id").to_pylist() == ["y"]
    assert prepare(batch, firsts={}, done=hash_ids(["zzz"]), files=FILES).num_rows == 3
    assert prepare(batch.slice(0, 0), firsts={}, done=hash_ids(["x"]), files=FILES).num_rows == 0
    assert isinstance(out, pa.Table)
