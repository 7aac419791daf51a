import pytest

from scalecap_ray.config import ModelDeployment, StageSettings, load_config
from scalecap_ray.pipeline import plan_scalecap_job
from scalecap_ray.resources.cluster import ClusterShape
from scalecap_ray.resources.placement import place_group, replica_placement

H100_NODE = {"cpus": 96, "gpus": 8, "accelerator_type": "H100"}


def cluster(*groups) -> ClusterShape:
    import json

    return ClusterShape.from_description(json.dumps(list(groups)))


def placement(overrides, *groups):
    return plan_scalecap_job(load_config(None, overrides)).placement(cluster(*groups))


EIGHT_GPU = ["vlm.replicas=4", "llm.model=Qwen/Qwen2-72B-Instruct",
             "llm.tensor_parallel_size=4"]


def test_eight_gpu_node_layout():
    p = placement(EIGHT_GPU, H100_NODE)
    assert p.ok, p.describe()
    vlm, llm = p.engines
    assert vlm.roles == ("vlm",) and vlm.placement.num_gpus == 1 and not vlm.placement.bundles
    # TP 4: the actor takes no GPU itself; its placement group has one bundle per rank,
    # the first also holding the actor's CPU.
    assert llm.placement.num_gpus == 0 and llm.placement.strategy == "STRICT_PACK"
    assert llm.placement.bundles == ({"GPU": 1, "CPU": 1}, {"GPU": 1}, {"GPU": 1}, {"GPU": 1})
    assert p.minimum()["GPU"] == 8
    assert "fits: yes" in p.describe()


def test_one_model_for_both_roles_is_one_engine():
    p = placement([], {"cpus": 8, "gpus": 1})
    assert p.ok and [e.roles for e in p.engines] == [("vlm", "llm")]


def test_tp_larger_than_any_node_is_rejected_under_strict_pack_only():
    nodes = {"count": 2, "cpus": 32, "gpus": 4, "accelerator_type": "H100"}
    strict = placement(["llm.model=Qwen/Qwen2-72B-Instruct", "llm.tensor_parallel_size=8"],
                       nodes)
    assert not strict.ok
    assert any("8 GPUs per replica, but the largest node has 4" in x for x in strict.problems)
    packed = placement(["llm.model=Qwen/Qwen2-72B-Instruct", "llm.tensor_parallel_size=4",
                        "llm.pipeline_parallel_size=2", "llm.placement_strategy=PACK",
                        "vlm.num_gpus=0.5", "vlm.num_cpus=1"], nodes, {"cpus": 4})
    assert not packed.ok  # the VLM's half GPU no longer fits beside 8 ranks on 8 GPUs
    spread = placement(["llm.model=Qwen/Qwen2-72B-Instruct", "llm.tensor_parallel_size=4",
                        "llm.pipeline_parallel_size=2", "llm.placement_strategy=PACK"],
                       nodes, {"count": 1, "cpus": 8, "gpus": 1})
    assert spread.ok, spread.describe()


def test_model_too_large_for_the_gpus_at_this_tp():
    p = placement(["llm.model=Qwen/Qwen2-72B-Instruct", "llm.tensor_parallel_size=2"],
                  H100_NODE)
    assert not p.ok
    (problem,) = p.problems
    assert "Qwen2-72B-Instruct needs about 72.7 GB of weights per GPU" in problem
    assert "80 GB GPU" in problem and "raise tensor_parallel_size" in problem
    # The same model on 141 GB GPUs fits at TP 2.
    assert placement(["llm.model=Qwen/Qwen2-72B-Instruct", "llm.tensor_parallel_size=2"],
                     {**H100_NODE, "accelerator_type": "H200"}).ok


def test_unknown_gpu_memory_or_model_size_is_noted_not_rejected():
    p = placement(["llm.model=org/mystery-model"], {"cpus": 8, "gpus": 2})
    assert p.ok
    assert any("size of org/mystery-model unknown" in n for n in p.notes)


def test_accelerator_type_and_custom_resources_must_exist():
    p = placement(["vlm.accelerator_type=A100-80G", "vlm.resources={pool_a: 1}"], H100_NODE)
    assert any("accelerator_type 'A100-80G' is on no node (the cluster has: H100)" in x
               for x in p.problems)
    assert any("custom resource 'pool_a' is on no node" in x for x in p.problems)
    ok = placement(["vlm.accelerator_type=H100", "vlm.resources={pool_a: 1}"],
                   {**H100_NODE, "resources": {"pool_a": 4}})
    assert ok.ok, ok.describe()


def test_too_few_gpus_for_the_minimum_replicas():
    p = placement(["vlm.replicas=6"], {"cpus": 32, "gpus": 4})
    assert not p.ok
    assert "only 4 of the minimum 6 replica(s) fit" in p.problems[0]
    assert "--cluster-resources" in p.problems[0]


def test_elastic_replicas_start_with_the_minimum():
    p = placement(["vlm.replicas=[2, 6]"], {"cpus": 32, "gpus": 4})
    assert p.ok
    assert any("4 of up to 6 replica(s) fit now" in n for n in p.notes)
    assert p.minimum()["GPU"] == 2


def test_cpu_only_cluster_runs_engines_without_gpus():
    p = placement([], {"cpus": 2})
    assert p.ok and p.engines[0].placement.num_gpus == 0 and p.engines[0].placement.num_cpus == 0
    wants_gpu = placement(["vlm.num_gpus=1"], {"cpus": 2})
    assert any("the cluster has none" in x for x in wants_gpu.problems)


def test_fractional_gpus_share_one_gpu():
    two = ["vlm.model=Qwen/Qwen2.5-VL-3B-Instruct", "vlm.num_gpus=0.5",
           "llm.model=Qwen/Qwen2.5-7B-Instruct", "llm.num_gpus=0.5"]
    p = placement(two, {"cpus": 8, "gpus": 1, "accelerator_type": "A100-80G"})
    assert p.ok, p.describe()
    assert [e.placement.num_gpus for e in p.engines] == [0.5, 0.5]
    three = placement([*two, "vlm.replicas=2"], {"cpus": 8, "gpus": 1})
    assert not three.ok
    # On half a GPU, vLLM may take 0.45 of its memory unless told otherwise.
    dep = ModelDeployment(num_gpus=0.5)
    assert dep.engine_config(0.5).gpu_memory_utilization == 0.45
    assert dep.engine_config(1).gpu_memory_utilization is None


def test_stage_cpus_and_data_tasks_must_fit():
    p = placement(["stages.caption.num_cpus=4", "stages.caption.concurrency=2"], {"cpus": 6})
    assert any("stage caption" in x for x in p.problems)
    full = placement(["stages.load.num_cpus=2"], {"cpus": 2})
    assert any("no CPU left for Ray Data" in x for x in full.problems)


@pytest.mark.parametrize(("strategy", "expected"), [
    ("STRICT_PACK", [1, 1, 1]),  # node 0 has only 2 GPUs free, node 1 takes all three
    ("PACK", [1, 1, 1]),
    ("SPREAD", [0, 1, 2]),
    ("STRICT_SPREAD", [0, 1, 2]),
])
def test_bundles_go_where_the_strategy_says(strategy, expected):
    free = [{"GPU": 2}, {"GPU": 4}, {"GPU": 1}]
    assert place_group(free, [{"GPU": 1}] * 3, strategy) == expected


def test_groups_that_do_not_fit_leave_the_nodes_untouched():
    free = [{"GPU": 2}, {"GPU": 2}]
    assert place_group(free, [{"GPU": 1}] * 3, "STRICT_PACK") is None
    assert place_group(free, [{"GPU": 1}] * 3, "STRICT_SPREAD") is None
    assert free == [{"GPU": 2}, {"GPU": 2}]
    assert place_group(free, [{"GPU": 1}] * 3, "PACK") == [0, 0, 1]
    assert free == [{"GPU": 0}, {"GPU": 1}]


def test_accelerator_and_custom_resources_go_into_the_bundles():
    dep = ModelDeployment(tensor_parallel_size=2, accelerator_type="H100",
                          resources={"pool": 1}, num_cpus=2)
    p = replica_placement(dep, cluster_has_gpus=True)
    assert p.bundles == ({"GPU": 1, "accelerator_type:H100": 0.001, "pool": 1, "CPU": 2},
                         {"GPU": 1, "accelerator_type:H100": 0.001})
    single = replica_placement(ModelDeployment(accelerator_type="H100"), True)
    assert single.demand() == [{"CPU": 1, "GPU": 1, "accelerator_type:H100": 0.001}]


@pytest.mark.parametrize(("fields", "message"), [
    ({"num_gpus": 0.5, "tensor_parallel_size": 2}, "one whole GPU per rank"),
    ({"replicas": (3, 2)}, "replicas must be"),
    ({"replicas": 0}, "replicas must be"),
    ({"placement_strategy": "PACKED"}, "placement_strategy"),
])
def test_bad_deployments_are_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        ModelDeployment(**fields)


def test_stage_actor_range():
    assert StageSettings(concurrency=(2, 5)).actor_range == (2, 5)
    assert StageSettings(concurrency=3).actor_range == (3, 3)


def test_replica_resources_are_derived_from_parallelism():
    dep = load_config(None, ["vlm.tensor_parallel_size=2", "vlm.pipeline_parallel_size=2"]).vlm
    gpu = replica_placement(dep, cluster_has_gpus=True)
    assert sum(b["GPU"] for b in gpu.demand()) == 4 and gpu.num_cpus == 1
    cpu = replica_placement(dep, cluster_has_gpus=False)
    assert cpu.demand() == [] and cpu.num_gpus == 0 and cpu.num_cpus == 0 and not cpu.bundles
    shared = load_config(None, ["vlm.num_gpus=0.5"]).vlm
    assert replica_placement(shared, cluster_has_gpus=True).demand() == [{"CPU": 1, "GPU": 0.5}]


def test_api_replicas_take_no_gpu_even_on_a_gpu_cluster():
    api = [f"{r}.{k}" for r in ("vlm", "llm") for k in ("backend=openai", "api_url=http://x/v1")]
    p = placement(api, H100_NODE)
    assert p.ok and len(p.engines) == 1
    (e,) = p.engines
    assert e.placement.demand() == [] and e.weights is None
