import json

import pytest

from scalecap_ray.config import load_config
from scalecap_ray.pipeline import plan_scalecap_job
from scalecap_ray.resources import split
from scalecap_ray.resources.cluster import ClusterShape

VLM, LLM = "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2-72B-Instruct"
SEPARATE = [f"vlm.model={VLM}", f"llm.model={LLM}", "llm.tensor_parallel_size=4"]
TWO_NODES = '[{"count": 2, "cpus": 96, "gpus": 8, "accelerator_type": "H100"}]'


def manifest(engines: dict, written: int = 100, vlm=VLM, llm=LLM, llm_tp=4) -> dict:
    return {"rows": {"written": written},
            "config": {"vlm": {"model": vlm, "tensor_parallel_size": 1,
                               "pipeline_parallel_size": 1},
                       "llm": {"model": llm, "tensor_parallel_size": llm_tp,
                               "pipeline_parallel_size": 1},
                       "stages": {"load": {"batch_size": 32, "concurrency": 1},
                                  "caption": {"batch_size": 32, "concurrency": 1},
                                  "questions": {"batch_size": 16, "concurrency": [1, 2]}}},
            "timing": {"engine_startup_s": 30.0, "streaming_s": 200.0,
                       "engines": {label: {"replicas": 1, "busy_s": busy}
                                   for label, busy in engines.items()}}}


def write(tmp_path, m) -> str:
    (tmp_path / "_manifest.json").write_text(json.dumps(m))
    return str(tmp_path)


def placer(overrides, cluster_json=TWO_NODES):
    plan = plan_scalecap_job(load_config(None, overrides))
    cluster = ClusterShape.from_description(cluster_json)
    return plan, (lambda replicas: plan.placement(cluster, replicas))


def test_profile_is_busy_replica_seconds_per_image(tmp_path):
    folder = write(tmp_path, manifest({"vlm": 50.0, "llm": 200.0}))
    for path in (folder, f"{folder}/_manifest.json"):
        p = split.read_profile(path)
        assert p.seconds_per_image == {"vlm": 0.5, "llm": 2.0}
        assert p.models == {"vlm": (VLM, 1), "llm": (LLM, 4)}
        assert p.images == 100 and p.images_per_s == 0.5
        assert p.replicas == {"vlm": 1, "llm": 1}
        assert p.stages["questions"] == (16, 2)  # (min, max) actors: the most count


@pytest.mark.parametrize("content, message", [
    (None, "cannot read it"),
    ("{not json", "not a run manifest"),
    (json.dumps({"rows": {"written": 0}, "timing": None}), "processed no rows"),
    (json.dumps(manifest({"vlm": 0.0, "llm": 0.0})), "never busy"),
])
def test_unusable_profiles_are_rejected_by_name(tmp_path, content, message):
    if content is not None:
        (tmp_path / "_manifest.json").write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        split.read_profile(str(tmp_path))
    assert str(tmp_path) in str(err.value)


def test_profile_must_match_the_configured_engines(tmp_path):
    plan, _ = placer(SEPARATE)
    engines = {label: dep for label, (_, dep) in plan.engine_groups().items()}
    ok = split.read_profile(write(tmp_path, manifest({"vlm": 50.0, "llm": 200.0})))
    split.check_profile(ok, engines)
    shared = split.read_profile(write(tmp_path, manifest({"vlm+llm": 250.0})))
    with pytest.raises(ValueError, match=r"measured engine\(s\) vlm\+llm but this "
                                         r"configuration has vlm, llm"):
        split.check_profile(shared, engines)
    other_tp = split.read_profile(write(tmp_path, manifest({"vlm": 50.0, "llm": 200.0},
                                                           llm_tp=8)))
    with pytest.raises(ValueError, match=rf"llm ran {LLM} on 8 GPU\(s\) per replica, this "
                                         f"configuration has {LLM} on 4"):
        split.check_profile(other_tp, engines)


def test_split_grows_the_bottleneck_while_whole_tp_groups_fit():
    _, place = placer(SEPARATE)
    # LLM replicas (4 GPUs each) take 2 s an image, VLM replicas (1 GPU) 0.5 s: the LLM
    # gets replicas until a fourth 4-GPU group no longer fits beside the VLM on 2 x 8.
    best = split.suggest_split({"vlm": 0.5, "llm": 2.0}, place)
    assert best.replicas == {"vlm": 1, "llm": 3}
    assert best.bottleneck == "llm" and best.images_per_s == pytest.approx(1.5)
    assert best.placement.ok
    # The other way round the VLM fills what the LLM leaves: 16 - 4 = 12 replicas.
    cheap_llm = split.suggest_split({"vlm": 6.0, "llm": 0.5}, place)
    assert cheap_llm.replicas == {"vlm": 12, "llm": 1}
    assert cheap_llm.images_per_s == pytest.approx(2.0)


def test_split_with_one_shared_engine_fills_the_cluster():
    _, place = placer([f"vlm.model={VLM}", f"llm.model={VLM}"])
    best = split.suggest_split({"vlm+llm": 1.0}, place)
    assert best.replicas == {"vlm+llm": 16} and best.images_per_s == 16


def test_rate_is_the_slowest_engines():
    assert split.rate({"vlm": 4, "llm": 1}, {"vlm": 1.0, "llm": 0.5}) == (2.0, "llm")
    assert split.rate({"vlm": 1, "llm": 1}, {"vlm": 1.0, "llm": 0.0}) == (1.0, "vlm")


def test_split_needs_gpus_and_a_first_replica_that_fits():
    _, no_gpus = placer(SEPARATE, '[{"cpus": 16}]')
    with pytest.raises(ValueError, match="takes no GPU on this cluster"):
        split.suggest_split({"vlm": 1.0, "llm": 1.0}, no_gpus)
    _, small = placer(SEPARATE, '[{"cpus": 16, "gpus": 4, "accelerator_type": "H100"}]')
    with pytest.raises(ValueError, match="one replica per engine does not fit"):
        split.suggest_split({"vlm": 1.0, "llm": 1.0}, small)


def test_describe_gives_the_flags_to_use(tmp_path):
    _, place = placer(SEPARATE)
    pilot = split.read_profile(write(tmp_path, manifest({"vlm": 50.0, "llm": 200.0})))
    best = split.suggest_split(pilot.seconds_per_image, place)
    text = split.describe(pilot, best, {"vlm": 4, "llm": 1})
    assert "vlm 0.5 replica-s/image, llm 2 replica-s/image" in text
    assert "split: vlm=1 llm=3 -> about 1.50 images/s, limited by llm (as configured: " \
           "about 0.50 images/s)" in text
    assert "--set vlm.replicas=1 --set llm.replicas=3" in text
    assert "3 of 16 GPUs left free" in text


def test_batches_keep_the_pilots_images_per_call_and_replica(tmp_path):
    pilot = split.read_profile(write(tmp_path, manifest({"vlm": 50.0, "llm": 200.0})))
    # The pilot: 1 replica each; caption sent 32 images a call, questions 16 from each
    # of 2 actors.  With 2 VLM replicas the caption batch doubles; with 3 LLM replicas
    # and 4 question actors each actor sends 16 x 2 x 3 / 4 = 24.
    stages = [("caption", "vlm", 1), ("questions", "llm", 4), ("answer", "vlm", 1)]
    got = split.batch_sizes(pilot, stages, {"vlm": 2, "llm": 3})
    assert got == {"caption": 64, "questions": 24}  # answer: not in the pilot's config
    text = split.describe(pilot, split.Split({"vlm": 2, "llm": 3}, 1.5, "llm",
                                             placer(SEPARATE)[1]({"vlm": 2, "llm": 3})),
                          {"vlm": 1, "llm": 1}, got)
    assert text.endswith("batches that give each replica the pilot's images per call:\n"
                         "  --set stages.caption.batch_size=64 "
                         "--set stages.questions.batch_size=24")
