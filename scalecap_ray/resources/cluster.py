"""The shape of a Ray cluster: its nodes and what each offers.  Read from a running cluster
or from a description (`--cluster-resources`), e.g. the full size an autoscaling cluster
grows to:

    {"nodes": [{"cpus": 8},
               {"count": 2, "cpus": 96, "gpus": 8, "accelerator_type": "H100"}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from scalecap_ray.engine.pool import ACCELERATOR_PREFIX
from scalecap_ray.resources.sizing import gpu_memory_gb

# Nodes assumed for a node group the autoscaler may grow without limit.
UNBOUNDED_NODES = 16


class NodeGroup(BaseModel):
    """`count` nodes of one kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(1, ge=1, description="Nodes of this kind.")
    cpus: float = Field(..., ge=0, description="CPUs per node.")
    gpus: float = Field(0, ge=0, description="GPUs per node.")
    accelerator_type: str | None = Field(None, description="Ray accelerator type of the GPUs, "
                                         "e.g. 'H100'.")
    gpu_memory_gb: float | None = Field(None, gt=0, description="Memory per GPU; default: "
                                        "known from accelerator_type.")
    resources: dict[str, float] = Field(default_factory=dict,
                                        description="Custom Ray resources per node.")


class ClusterDescription(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nodes: list[NodeGroup] = Field(..., min_length=1)


@dataclass(frozen=True)
class Node:
    name: str
    resources: dict[str, float]  # Ray's names: CPU, GPU, accelerator_type:X, custom ones
    gpu_memory_gb: float | None = None

    @property
    def accelerator_type(self) -> str | None:
        for key in self.resources:
            if key.startswith(ACCELERATOR_PREFIX):
                return key[len(ACCELERATOR_PREFIX):]
        return None


@dataclass(frozen=True)
class ClusterShape:
    nodes: tuple[Node, ...]
    source: str  # where the shape came from, for messages

    def total(self, resource: str) -> float:
        return sum(n.resources.get(resource, 0.0) for n in self.nodes)

    @property
    def has_gpus(self) -> bool:
        return self.total("GPU") > 0

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for node in self.nodes:
            kinds[_node_text(node)] = kinds.get(_node_text(node), 0) + 1
        return ", ".join(f"{n} x {{{text}}}" for text, n in kinds.items())

    @classmethod
    def from_description(cls, text: str) -> ClusterShape:
        """From JSON text, or a path to a JSON file; a bare list of node groups is fine."""
        source = "--cluster-resources"
        if not text.lstrip().startswith(("{", "[")):
            path = Path(text)
            if not path.is_file():
                raise ValueError(f"--cluster-resources: {text!r} is neither JSON nor a file")
            source, text = f"--cluster-resources {path}", path.read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--cluster-resources: not valid JSON: {exc}") from None
        if isinstance(data, list):
            data = {"nodes": data}
        desc = TypeAdapter(ClusterDescription).validate_python(data)
        nodes = []
        for g, group in enumerate(desc.nodes):
            res = {"CPU": group.cpus, **group.resources}
            if group.gpus:
                res["GPU"] = group.gpus
            if group.accelerator_type:
                res[ACCELERATOR_PREFIX + group.accelerator_type] = 1.0
            memory = group.gpu_memory_gb or gpu_memory_gb(group.accelerator_type)
            nodes += [Node(f"group{g}-node{i}", res, memory) for i in range(group.count)]
        return cls(tuple(nodes), source)

    @classmethod
    def from_node_groups(cls, groups, source: str) -> ClusterShape | None:
        """The cluster at the size an autoscaler may grow it to, from its node groups
        (`resources`, `max_count`; -1 = unbounded, counted as UNBOUNDED_NODES); None
        when no group can grow."""
        if not any(g.max_count == -1 or g.max_count > g.min_count for g in groups
                   if g.resources and g.max_count != 0):
            return None
        nodes = []
        for g in groups:
            count = UNBOUNDED_NODES if g.max_count == -1 else g.max_count
            nodes += [_ray_node(f"{g.name}-{i}", g.resources) for i in range(count)]
        return cls(tuple(nodes), source)

    @classmethod
    def from_ray(cls, source: str = "the Ray cluster") -> ClusterShape:
        """The Ray cluster this process is connected to: at full size when an autoscaler
        can add nodes (its node groups, as Ray Data reads them), else its alive nodes."""
        import ray
        from ray._private.state import state

        config = state.get_cluster_config()
        if config is not None:
            full = cls.from_node_groups(config.node_group_configs,
                                        f"{source} at the size its autoscaler may grow to")
            if full is not None:
                return full

        nodes = [_ray_node(f"{i['NodeManagerAddress']}/{i['NodeID'][:8]}", i["Resources"])
                 for i in ray.nodes() if i.get("Alive")]
        return cls(tuple(nodes), source)


def _ray_node(name: str, resources: dict[str, float]) -> Node:
    """A node from Ray's resources, without the entries placement never asks for (the
    per-node `node:<ip>` marker, memory); its GPU memory from its accelerator type."""
    res = {k: float(v) for k, v in resources.items()
           if not k.startswith("node:") and k not in ("memory", "object_store_memory")}
    node = Node(name, res)
    return replace(node, gpu_memory_gb=gpu_memory_gb(node.accelerator_type))


def _node_text(node: Node) -> str:
    parts = [f"CPU: {node.resources.get('CPU', 0):g}"]
    if node.resources.get("GPU"):
        gpu = f"GPU: {node.resources['GPU']:g}"
        if node.accelerator_type:
            gpu += f" {node.accelerator_type}"
        if node.gpu_memory_gb:
            gpu += f" {node.gpu_memory_gb:g} GB"
        parts.append(gpu)
    parts += [f"{k}: {v:g}" for k, v in sorted(node.resources.items())
              if k not in ("CPU", "GPU") and not k.startswith(ACCELERATOR_PREFIX)]
    return ", ".join(parts)
