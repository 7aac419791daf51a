import pyarrow as pa

from scalecap_ray.config import ImageSettings
from scalecap_ray.io.storage import RetryPolicy
from scalecap_ray.stages.load import LoadStage
from tests.conftest import drawn_image
from tests.scripted import make_batch


def test_reads_paths_or_carried_bytes_and_fails_rows_alone(tmp_path):
    (tmp_path / "a.png").write_bytes(drawn_image(1))
    (tmp_path / "bad.png").write_bytes(b"nope")
    batch = make_batch([
        {"image_uri": str(tmp_path / "a.png"), "image_data": None},
        {"image_uri": "t.parquet#row=2", "image_data": drawn_image(2)},
        {"image_uri": str(tmp_path / "missing.png"), "image_data": None},
        {"image_uri": str(tmp_path / "bad.png"), "image_data": None},
    ])
    batch = batch.set_column(batch.column_names.index("image_data"), "image_data",
                             batch.column("image_data").cast(pa.binary()))
    out = LoadStage(image=ImageSettings(), retry=RetryPolicy(attempts=1))(batch).to_pylist()
    assert out[0]["image_bytes"][:2] == b"\xff\xd8" and out[1]["image_bytes"][:2] == b"\xff\xd8"
    assert out[0]["image_hash"] != out[1]["image_hash"] and out[0]["width"] == 160
    assert out[2]["error"] == f"{tmp_path / 'missing.png'}: no such file"
    assert "not a decodable image" in out[3]["error"]
    assert [r["error_stage"] for r in out] == [None, None, "load", "load"]
