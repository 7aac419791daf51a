"""The ScaleCap job end to end: `scalecap-ray run --smoke` through a local Ray cluster with
a real vLLM engine, checked against the output contract (docs/output-schema.md)."""

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalecap_ray.text.scoring import content_spans
from tests.conftest import EXAMPLES
from tests.test_cli import run_cli

pytestmark = pytest.mark.engine

S, D, I64 = pa.string(), pa.float64(), pa.int64()
CONTRACT = {
    "id": S, "image": S, "init_caption": S, "sentences": pa.list_(S),
    "sentence_scores": pa.list_(D), "golden_sentences": pa.list_(S),
    "object_questions": pa.list_(S), "position_questions": pa.list_(S),
    "answers": pa.list_(S), "answer_scores": pa.list_(D), "qa_answers_filtered": pa.list_(S),
    "final_caption": S, "error": S, "error_stage": S,
    "requests": I64, "prompt_tokens": I64, "cached_tokens": I64, "output_tokens": I64,
    "scalecap_record": pa.struct([
        ("init_caption", S), ("golden_sentences", pa.list_(S)),
        ("object_questions", pa.list_(S)), ("position_questions", pa.list_(S)),
        ("qa_answers_filtered", pa.list_(S)), ("final_caption", S)]),
}
N_EXAMPLES = len((EXAMPLES / "images.jsonl").read_text().splitlines())


def job_input(tmp_path) -> str:
    """The example images plus one missing image, as a JSONL input."""
    src = tmp_path / "in"
    shutil.copytree(EXAMPLES / "images", src / "images")
    lines = (EXAMPLES / "images.jsonl").read_text().splitlines()
    lines.append(json.dumps({"image": "images/missing.png"}))
    (src / "input.jsonl").write_text("\n".join(lines) + "\n")
    return str(src / "input.jsonl")


def run_job(tmp_path, *settings: str) -> list[dict]:
    out = tmp_path / "out"
    args = ["run", "--smoke", "--input", job_input(tmp_path), "--output", str(out)]
    for s in settings:
        args += ["--set", s]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = pq.read_table(out)
    for name, typ in CONTRACT.items():
        assert table.schema.field(name).type == typ, name
    rows = table.to_pylist()
    assert len(rows) == N_EXAMPLES + 1  # rows in == rows out
    for r in rows:
        r["_output"] = str(out)
    return sorted(rows, key=lambda r: r["image"])


@pytest.fixture(scope="module")
def default_rows(tmp_path_factory):
    return run_job(tmp_path_factory.mktemp("default"))


def good(rows):
    return [r for r in rows if r["error"] is None]


def test_missing_image_is_an_error_row(default_rows):
    (missing,) = [r for r in default_rows if r["image"] == "images/missing.png"]
    assert missing["error_stage"] == "load" and "missing.png" in missing["error"]
    assert missing["final_caption"] is None and missing["scalecap_record"]["golden_sentences"] == []


def test_export_writes_the_seed_records(default_rows):
    out = default_rows[0]["_output"]
    proc = run_cli("export", out, "--no-errors")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(records) == len(good(default_rows))
    for rec in records:
        assert set(rec) == {"id", "image", "scalecap_record"}
        assert set(rec["scalecap_record"]) == set(CONTRACT["scalecap_record"].names)


def test_every_stage_did_real_work(default_rows):
    rows = good(default_rows)
    assert len(rows) >= N_EXAMPLES - 1
    for r in rows:
        assert r["init_caption"] and len(r["sentence_scores"]) == len(r["sentences"])
        assert r["golden_sentences"] and r["object_questions"] and r["final_caption"]
        assert len(r["answers"]) == 2 * len(r["object_questions"])
        assert r["position_questions"] == [
            q.replace("about ", "about the position of ", 1) for q in r["object_questions"]]
        assert r["answer_scores"] is None  # second filter off
        assert r["object_summary"] and r["position_summary"]  # paper integration
        assert r["scalecap_record"]["final_caption"] == r["final_caption"]
        stages = [u["stage"] for u in r["stage_usage"]]
        assert stages == ["caption", "verify", "questions", "answer", "integrate", "integrate"]
        assert r["requests"] == 1 + 2 + len(r["golden_sentences"]) + len(r["answers"]) + 3
        assert r["cached_tokens"] > 0 and r["output_tokens"] > 0
    # The verifier judged for real: it dropped sentences somewhere and kept most.
    assert any(len(r["golden_sentences"]) < len(r["sentences"]) for r in rows)
    kept = sum(len(r["golden_sentences"]) for r in rows)
    assert kept > 0.5 * sum(len(r["sentences"]) for r in rows)
    assert all(g in r["sentences"] for r in rows for g in r["golden_sentences"])


def test_same_run_twice_gives_identical_output(default_rows, tmp_path):
    again = run_job(tmp_path)
    fields = ["image", "init_caption", "sentence_scores", "golden_sentences", "object_questions",
              "answers", "final_caption"]
    assert [{f: r[f] for f in fields} for r in again] == \
        [{f: r[f] for f in fields} for r in default_rows]


def test_yes_no_single_with_second_filter(tmp_path):
    rows = good(run_job(tmp_path, "verify_mode=yes_no", "integrate_mode=single",
                        "second_filter=true"))
    assert len(rows) >= N_EXAMPLES - 1
    scores = [s for r in rows for s in r["sentence_scores"]]
    assert all(0.0 <= s <= 1.0 for s in scores) and len(set(scores)) > 1
    for r in rows:
        assert len(r["answer_scores"]) == len(r["answers"])
        assert r["qa_answers_filtered"] == [a for a, k in zip(r["answers"], r["answer_kept"],
                                                               strict=True) if k]
        assert r["object_summary"] is None and r["final_caption"]
        assert [u["stage"] for u in r["stage_usage"]][-2:] == ["filter", "integrate"]
    kept = [k for r in rows for k in r["answer_kept"]]
    assert any(kept) and not all(kept)


def test_contrastive_second_filter_scores_answers(tmp_path):
    rows = good(run_job(tmp_path, "second_filter=true"))
    assert len(rows) >= N_EXAMPLES - 1
    for r in rows:
        pairs = [(s, a) for s, a in zip(r["answer_scores"], r["answers"], strict=True) if a]
        # An answer is scored unless it has no content word to judge ("It is there.").
        assert pairs and all((s is not None) == bool(content_spans(a)) for s, a in pairs)
    assert any(s is not None for r in rows for s in r["answer_scores"])
    assert any(r["qa_answers_filtered"] for r in rows)


def test_manifest_matches_the_parquet_and_resumes_say_so(default_rows):
    out = default_rows[0]["_output"]
    manifest = json.loads((Path(out) / "_manifest.json").read_text())
    rows = manifest["rows"]
    assert rows == {"input": N_EXAMPLES + 1, "output": N_EXAMPLES + 1, "ok": N_EXAMPLES,
                    "errors": 1, "written": N_EXAMPLES + 1, "skipped": 0,
                    "no_questions": sum(bool(r["no_questions"]) for r in default_rows)}
    assert manifest["errors_by_stage"] == {"load": {next(iter(
        manifest["errors_by_stage"]["load"])): 1}}
    table = pq.read_table(out, columns=["stage_usage"]).column("stage_usage").to_pylist()
    for stage, totals in manifest["stages"].items():
        entries = [e for usage in table for e in usage if e["stage"] == stage]
        for key in ("requests", "prompt_tokens", "cached_tokens", "output_tokens"):
            assert totals[key] == sum(e[key] for e in entries), (stage, key)
        assert 0 <= totals["cache_hit_rate"] <= 1
    assert set(manifest["stages"]) == {"caption", "verify", "questions", "answer", "integrate"}
    assert manifest["resumed"] is False and manifest["images_per_second"] > 0
    assert manifest["versions"]["ray"] and manifest["versions"]["vllm"]
    assert manifest["config"]["verify_mode"] == "contrastive"
    # Where the time went: one engine for both roles, busy part of its up time, and it
    # saw every request the stages made.
    timing = manifest["timing"]
    assert timing["engine_startup_s"] > 0 and timing["streaming_s"] > 0
    (engine,) = timing["engines"].values()
    assert set(timing["engines"]) == {"vlm+llm"} and engine["replicas"] == 1
    assert 0 < engine["busy_s"] <= engine["up_s"] and 0 < engine["busy_share"] <= 1
    # Idle before the first request and after the last are parts of the idle time.
    before, after = engine["idle_before_first_s"], engine["idle_after_last_s"]
    assert before >= 0 and after >= 0
    assert before + after <= engine["up_s"] - engine["busy_s"] + 0.01
    assert engine["requests"] == sum(s["requests"] for s in manifest["stages"].values())
    # Run again into the same output: nothing left to do; the manifest says it resumed.
    src = Path(out).parent / "in" / "input.jsonl"
    proc = run_cli("run", "--smoke", "--quiet", "--input", str(src), "--output", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote 0 row(s), {N_EXAMPLES + 1} already there" in proc.stdout
    assert "resuming earlier runs" in proc.stdout
    again = json.loads((Path(out) / "_manifest.json").read_text())
    assert again["resumed"] is True and len(again["runs"]) == 2
    assert again["rows"]["output"] == N_EXAMPLES + 1 and again["rows"]["skipped"] == N_EXAMPLES + 1
    assert again["stages"] == manifest["stages"]  # the totals are over the whole output
    assert again["timing"] is None  # no engine started: nothing was left to do


def chromium() -> str:
    import shutil as sh

    found = sh.which("chromium") or sh.which("chromium-browser")
    assert found, "chromium is missing: `make test` installs it (Debian package chromium)"
    return found


def browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1000",
         *args, page.as_uri()], capture_output=True, text=True, timeout=180)


def test_report_renders_in_a_real_browser(default_rows, tmp_path):
    from tests.report.test_html import parse

    out = Path(default_rows[0]["_output"])
    proc = run_cli("report", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = out / "_report.html"
    assert f"report: {page}" in proc.stdout
    assert pq.read_table(out).num_rows == len(default_rows)  # readers skip the page
    dom = browse(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = parse(dom.stdout).found
    cards = {a["data-id"]: a for t, _, a in found if t == "section"}
    assert set(cards) == {r["id"] for r in default_rows}  # one card per row
    for r in default_rows:
        assert cards[r["id"]]["data-status"] == ("ok" if r["error"] is None else "error")
    # The marks, in page order, are those of the Parquet rows (ok rows first, by image).
    marks = [a["data-mark"] for _, _, a in found if "data-mark" in a]
    ordered = sorted(default_rows, key=lambda r: (r["error"] is not None, r["image"]))
    expected = ["kept" if s in (r["golden_sentences"] or []) else "dropped"
                for r in ordered for s in (r["sentences"] or [])]
    assert marks == expected
    assert f'<span id="shown">{len(default_rows)}</span>' in dom.stdout  # the script ran
    assert "failed at load" in dom.stdout and "missing.png" in dom.stdout
    shot = tmp_path / "report.png"
    assert browse(page, tmp_path, f"--screenshot={shot}").returncode == 0
    from PIL import Image

    with Image.open(shot) as im:
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200  # text, charts and pictures, not blank
