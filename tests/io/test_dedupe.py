import pyarrow as pa
import pytest

from scalecap_ray.io.dedupe import hash_ids, prepare, tally, todo_count
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


# x three times (its first at a.jsonl:1), y twice, z once; across both files.
TALLIED = ((0, 1, "x", "1.png"), (0, 2, "y", "2.png"), (0, 3, "x", "3.png"),
           (1, 1, "z", "4.png"), (1, 2, "x", "5.png"), (1, 3, "y", "6.png"))


@pytest.mark.parametrize("partitions", [1, 2])  # in the driver, and by Ray's shuffle
@pytest.mark.parametrize("done, todo", [
    ([], 6),
    (["x", "z"], 4),  # the first x and z were written; the duplicates were not
    # a resumed run after the first: every row but the second y is in the output
    (["x", "y", "z", f"x#dup-{order_key(0, 3)}", f"x#dup-{order_key(1, 2)}"], 1),
    (["x", "y", "z", f"x#dup-{order_key(0, 3)}", f"x#dup-{order_key(1, 2)}",
      f"y#dup-{order_key(1, 3)}", "other"], 0),
])
def test_tally_finds_duplicates_and_counts_what_prepare_keeps(ray_local, done, todo,
                                                               partitions):
    table = rows(*TALLIED)
    ds = ray_local.data.from_arrow([table.slice(0, 2), table.slice(2, 3), table.slice(5)])
    firsts, counted = tally(ds, hash_ids(done), num_cpus=0.1, num_partitions=partitions)
    assert firsts == {"x": order_key(0, 1), "y": order_key(0, 2)}
    assert counted == todo
    kept = prepare(table, firsts=firsts, done=hash_ids(done), files=FILES)
    assert kept.num_rows == todo


@pytest.mark.parametrize("partitions", [1, None])
def test_tally_of_unique_ids_and_of_nothing(ray_local, partitions):
    table = rows((0, 1, "a", "1.png"), (0, 2, "b", "2.png"))
    assert tally(ray_local.data.from_arrow(table), hash_ids(["b"]), num_cpus=0.1,
                 num_partitions=partitions) == ({}, 1)
    empty = ray_local.data.from_arrow(table.slice(0, 0))
    assert tally(empty, hash_ids([]), num_cpus=0.1, num_partitions=partitions) == ({}, 0)


def test_todo_count():
    assert todo_count(["a", "b", "c"], hash_ids(["b", "zzz"])) == 2
    assert todo_count([], hash_ids(["b"])) == 0
