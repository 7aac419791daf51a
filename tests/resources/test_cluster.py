import json

import pytest

from scalecap_ray.resources.cluster import ClusterShape


def test_description_expands_groups_and_knows_gpu_memory():
    shape = ClusterShape.from_description(json.dumps({"nodes": [
        {"cpus": 8, "resources": {"head": 1}},
        {"count": 2, "cpus": 96, "gpus": 8, "accelerator_type": "H100"},
        {"cpus": 16, "gpus": 1, "accelerator_type": "X1", "gpu_memory_gb": 33},
    ]}))
    assert len(shape.nodes) == 4 and shape.total("GPU") == 17 and shape.total("CPU") == 216
    assert shape.nodes[0].resources == {"CPU": 8, "head": 1}
    assert shape.nodes[1].accelerator_type == "H100" and shape.nodes[1].gpu_memory_gb == 80
    assert shape.nodes[3].gpu_memory_gb == 33
    assert "2 x {CPU: 96, GPU: 8 H100 80 GB}" in shape.summary()


def test_description_from_a_file_and_as_a_bare_list(tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text('[{"cpus": 4, "gpus": 2}]')
    shape = ClusterShape.from_description(str(path))
    assert shape.has_gpus and str(path) in shape.source


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    ("/no/such/file.json", "neither JSON nor a file"),
    ('{"nodes": []}', "at least 1"),
    ('[{"cpus": 4, "gpu": 8}]', "gpu"),  # a typo is an error, not a GPU-less node
    ('[{"gpus": 8}]', "cpus"),
    ('[{"cpus": 4, "count": 0}]', "count"),
])
def test_bad_descriptions_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        ClusterShape.from_description(text)


def test_autoscaling_cluster_is_checked_at_full_size():
    from ray.core.generated.autoscaler_pb2 import ClusterConfig, NodeGroupConfig

    config = ClusterConfig(node_group_configs=[
        NodeGroupConfig(name="head", resources={"CPU": 8, "memory": 30_000_000_000}, min_count=1,
                        max_count=1),
        NodeGroupConfig(name="gpu", resources={"CPU": 96, "GPU": 8,
                                               "accelerator_type:H100": 1}, min_count=0,
                        max_count=3),
    ])
    shape = ClusterShape.from_node_groups(config.node_group_configs, "test")
    assert len(shape.nodes) == 4 and shape.total("GPU") == 24
    assert shape.nodes[1].gpu_memory_gb == 80 and "memory" not in shape.nodes[0].resources
    unbounded = ClusterConfig(node_group_configs=[
        NodeGroupConfig(name="gpu", resources={"GPU": 1, "CPU": 4}, max_count=-1)])
    assert ClusterShape.from_node_groups(unbounded.node_group_configs, "t").total("GPU") == 16
    fixed = ClusterConfig(node_group_configs=[
        NodeGroupConfig(name="head", resources={"CPU": 8}, min_count=1, max_count=1)])
    assert ClusterShape.from_node_groups(fixed.node_group_configs, "t") is None
