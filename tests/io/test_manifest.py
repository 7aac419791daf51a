import pyarrow as pa
import pyarrow.parquet as pq

from scalecap_ray.io.manifest import summarize, summary_lines
from scalecap_ray.io.output import OutputFolder
from scalecap_ray.stages.batch import USAGE_TYPE


def write_rows(folder, name, rows, **extra):
    columns = {"error": pa.string(), "error_stage": pa.string(), "stage_usage": USAGE_TYPE,
               **extra}
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(columns)), folder / name)


def test_rows_without_questions_are_counted_over_every_part(tmp_path):
    ok = {"error": None, "error_stage": None, "stage_usage": []}
    write_rows(tmp_path, "part-a-0.parquet", [{**ok, "no_questions": True},
                                              {**ok, "no_questions": False}],
               no_questions=pa.bool_())
    write_rows(tmp_path, "part-b-0.parquet",
               [{**ok, "no_questions": True},
                {"error": "x.png: missing", "error_stage": "load", "stage_usage": [],
                 "no_questions": None}], no_questions=pa.bool_())
    summary = summarize(OutputFolder(str(tmp_path)))
    assert (summary["rows"], summary["ok"], summary["no_questions"]) == (4, 3, 2)
    manifest = {"rows": {"input": 4, "output": 4, "ok": 3, "errors": 1, "written": 4,
                         "no_questions": 2},
                "seconds": 2.0, "images_per_second": 2.0, "resumed": False,
                "errors_by_stage": {}, "stages": {}, "timing": None}
    assert summary_lines(manifest)[1] == ("  2 row(s) had no questions: integrated from "
                                          "their golden sentences alone")


def test_a_caption_output_has_no_such_column_and_counts_none(tmp_path):
    write_rows(tmp_path, "part-a-0.parquet",
               [{"error": None, "error_stage": None, "stage_usage": []}])
    assert summarize(OutputFolder(str(tmp_path)))["no_questions"] == 0
