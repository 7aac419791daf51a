"""Part files, run records and what a rerun may continue."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalecap_ray.config import ScaleCapConfig, load_config
from scalecap_ray.io.output import (
    RUN_FILE,
    OutputFolder,
    ResumeError,
    result_settings,
    write_part,
)
from scalecap_ray.io.storage import DEFAULT_RETRY


def dump(*overrides):
    return load_config(None, list(overrides)).model_dump(mode="json")


def write(folder: str, ids: list[str], run_id="r1"):
    return write_part(pa.table({"id": ids, "caption": ["c"] * len(ids)}), output=folder,
                      run_id=run_id, row_group_rows=2, retry=DEFAULT_RETRY)


def test_parts_are_whole_files_with_row_groups(tmp_path):
    out = OutputFolder(str(tmp_path))
    out.start_run("caption", "caption", dump(), "r1", overwrite=False, force=False)
    result = write(str(tmp_path), ["a", "b", "c", "d", "e"]).to_pylist()[0]
    assert result["rows"] == 5 and result["file"].startswith("part-r1-")
    meta = pq.ParquetFile(tmp_path / result["file"]).metadata
    assert meta.num_row_groups == 3 and meta.row_group(0).column(0).compression == "ZSTD"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert sorted(out.done_ids()) == ["a", "b", "c", "d", "e"]


def test_resume_returns_done_ids_and_records_runs(tmp_path):
    out = OutputFolder(str(tmp_path))
    assert out.start_run("scalecap", "scalecap_record", dump(), "r1", overwrite=False,
                         force=False) == []
    write(str(tmp_path), ["a", "b"])
    out.finish_run("r1", 2)
    (tmp_path / ".tmp-left-by-a-killed-run.parquet").write_bytes(b"partial")
    # Resources may change between runs; results-deciding settings may not.
    done = out.start_run("scalecap", "scalecap_record", dump("stages.answer.batch_size=2",
                                                             "vlm.replicas=4"), "r2",
                         overwrite=False, force=False)
    assert sorted(done) == ["a", "b"]
    assert not (tmp_path / ".tmp-left-by-a-killed-run.parquet").exists()
    runs = json.loads((tmp_path / RUN_FILE).read_text())["runs"]
    assert [r["run_id"] for r in runs] == ["r1", "r2"] and runs[0]["rows_written"] == 2


def test_mismatched_config_or_job_is_refused_unless_forced(tmp_path):
    out = OutputFolder(str(tmp_path))
    out.start_run("scalecap", "scalecap_record", dump(), "r1", overwrite=False, force=False)
    write(str(tmp_path), ["a"])
    with pytest.raises(ResumeError, match=r"differs in: prompts\.caption, tau_sentence"):
        out.start_run("scalecap", "scalecap_record",
                      dump("tau_sentence=0.3", "prompts.caption=Say it."), "r2",
                      overwrite=False, force=False)
    with pytest.raises(ResumeError, match="holds a 'scalecap' job, not 'caption'"):
        out.start_run("caption", "caption", dump(), "r2", overwrite=False, force=False)
    assert out.start_run("scalecap", "scalecap_record", dump("tau_sentence=0.3"), "r3",
                         overwrite=False, force=True) == ["a"]


def test_overwrite_clears_only_our_files(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    out = OutputFolder(str(tmp_path))
    out.start_run("caption", "caption", dump(), "r1", overwrite=False, force=False)
    write(str(tmp_path), ["a"])
    assert out.start_run("caption", "caption", dump("tau_sentence=0.5"), "r2",
                         overwrite=True, force=False) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_FILE, "notes.txt"]


def test_result_settings_leave_resources_out():
    full = ScaleCapConfig().model_dump(mode="json")
    settings = result_settings(full)
    assert "replicas" not in settings["vlm"] and "batch_size" not in settings["stages"]["caption"]
    assert settings["vlm"]["model"] == full["vlm"]["model"] and "tau_sentence" in settings


def test_s3_output(s3_server, s3_bucket):
    folder = f"s3://{s3_bucket}/runs/one"
    out = OutputFolder(folder)
    out.start_run("caption", "caption", dump(), "r1", overwrite=False, force=False)
    write(folder, ["a", "b"])
    assert sorted(out.done_ids()) == ["a", "b"]
    assert out.read_run()["job"] == "caption"
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(
        Bucket=s3_bucket, Prefix="runs/one/")["Contents"]]
    assert f"runs/one/{RUN_FILE}" in keys and sum(k.endswith(".parquet") for k in keys) == 1
