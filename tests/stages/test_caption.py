import pyarrow as pa

from scalecap_ray.engine.types import ChatResult, Sampling
from scalecap_ray.stages.batch import BOOKKEEPING
from scalecap_ray.stages.caption import CaptionStage
from tests.scripted import ScriptedEngine


def batch(n: int, failed: dict[int, str] | None = None) -> pa.Table:
    failed = failed or {}
    rows = [{"id": str(i), "image_bytes": b"img%d" % i, "image_hash": f"h{i}",
             "image_uri": "https://example.org/0.png" if i == 0 else f"/data/{i}.png",
             "error": failed.get(i), "error_stage": "load" if i in failed else None,
             "stage_usage": []} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=pa.schema({
        "id": pa.string(), "image_bytes": pa.binary(), "image_hash": pa.string(),
        "image_uri": pa.string(), **BOOKKEEPING}))


def test_one_request_per_image_with_the_image_first():
    engine = ScriptedEngine(lambda req, s: f"A caption of {req.image_key}.")
    stage = CaptionStage(engine, prompt="P1", system="sys", sampling=Sampling(max_tokens=9))
    out = stage(batch(3))
    assert out.column("init_caption").to_pylist() == [f"A caption of h{i}." for i in range(3)]
    (requests, sampling), = engine.calls  # one engine call for the whole batch
    assert [r.image for r in requests] == [b"img0", b"img1", b"img2"]
    # The source URL goes along where it is http(s), for API engines that may send it.
    assert [r.image_url for r in requests] == ["https://example.org/0.png", None, None]
    assert all(r.prompt == "P1" and r.system == "sys" for r in requests)
    assert sampling.max_tokens == 9
    usage = out.column("stage_usage").to_pylist()
    assert [u[0]["stage"] for u in usage] == ["caption"] * 3
    assert all(u[0]["requests"] == 1 and u[0]["output_tokens"] == 4 for u in usage)


def test_failed_rows_pass_through_and_errors_stay_per_row():
    def reply(req, s):
        if req.image_key == "h1":
            return ChatResult(error="VLLMValidationError: prompt too long")
        return "   " if req.image_key == "h2" else "Fine."
    out = CaptionStage(ScriptedEngine(reply), prompt="P", sampling=Sampling(),
                       output="caption")(batch(4, failed={3: "x.png: missing"}))
    assert out.num_rows == 4
    assert out.column("caption").to_pylist() == ["Fine.", None, None, None]
    assert out.column("error_stage").to_pylist() == [None, "caption", "caption", "load"]
    errors = out.column("error").to_pylist()
    assert "prompt too long" in errors[1] and "empty caption" in errors[2]
    assert errors[3] == "x.png: missing"
    assert out.schema.field("caption").type == pa.string()
