"""The cluster deployment files (Ray cluster launcher, KubeRay, runtime env): they parse, keep
token auth on and the dashboard private, hold no secrets, and agree with the repository
(entry point, job configs, dependencies).  Fast: no Ray cluster, no network."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

CLUSTER = REPO / "cluster"
LAUNCHER = CLUSTER / "launcher.yaml"
KUBERAY = CLUSTER / "kuberay.yaml"
RUNTIME_ENV = CLUSTER / "runtime-env.yaml"
# Everything else in cluster/ is a job config (`--config`).
DEPLOY_FILES = {LAUNCHER.name, KUBERAY.name, RUNTIME_ENV.name}
TOKEN_PATH = "~/.ray/auth_token"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def kuberay_docs() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(KUBERAY.read_text()) if d is not None]
    kinds = [d["kind"] for d in docs]
    assert sorted(kinds) == ["RayCluster", "RayJob"], kinds
    return {d["kind"]: d for d in docs}


def job_configs() -> list[Path]:
    return sorted(p for p in CLUSTER.glob("*.yaml") if p.name not in DEPLOY_FILES)


def key(req: str) -> tuple:
    r = Requirement(req)
    return canonicalize_name(r.name), tuple(sorted(r.extras)), r.specifier, str(r.marker or "")


def expected_pip() -> set[tuple]:
    """pyproject's dependencies plus the gpu extra, without ray (the cluster image has it)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["gpu"]]
    keys = {key(r) for r in reqs if canonicalize_name(Requirement(r).name) != "ray"}
    assert len(keys) == len(reqs) - 1, "pyproject should list ray exactly once"
    return keys


def pip_keys(reqs: list[str]) -> set[tuple]:
    keys = {key(r) for r in reqs}
    assert len(keys) == len(reqs), f"duplicate requirements: {reqs}"
    return keys


# --- every file parses ------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CLUSTER.glob("*.yaml")), ids=lambda p: p.name)
def test_cluster_yaml_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)
    if path != KUBERAY:
        assert len(docs) == 1, f"{path.name}: one document expected"


def test_deploy_files_exist():
    for name in DEPLOY_FILES:
        assert (CLUSTER / name).is_file(), name


# --- Ray cluster launcher ---------------------------------------------------------------


def launcher_gpu_types(cfg: dict) -> dict[str, dict]:
    return {name: t for name, t in cfg["available_node_types"].items()
            if name != cfg["head_node_type"] and t.get("resources", {}).get("GPU", 0) > 0}


def test_launcher_passes_rays_own_validation():
    # What `ray up` does before it starts anything: defaults filled in, schema checked.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(load(LAUNCHER)))


def test_launcher_has_a_cpu_head_and_an_autoscaled_gpu_worker_type():
    cfg = load(LAUNCHER)
    assert cfg["provider"]["type"] == "aws" and cfg["provider"]["region"]
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head.get("resources", {}).get("GPU", 0) == 0
    assert not head["node_config"]["InstanceType"].startswith(("p", "g")), "GPU head"
    gpu = launcher_gpu_types(cfg)
    assert gpu, "no GPU worker type"
    for name, t in gpu.items():
        assert t.get("min_workers", 0) == 0, f"{name}: idle GPU nodes cost money"
        assert 1 <= t["max_workers"] <= cfg["max_workers"] <= 16
        assert t["resources"]["GPU"] == 8, f"{name}: cluster/node-8gpu.yaml needs 8 GPUs a node"


def ray_start_commands(cfg: dict, which: str) -> list[str]:
    cmds = [c for c in cfg[f"{which}_start_ray_commands"] if "ray start" in c]
    assert len(cmds) == 1, cmds
    return cmds


def test_launcher_starts_ray_with_token_auth():
    cfg = load(LAUNCHER)
    for which in ("head", "worker"):
        for cmd in ray_start_commands(cfg, which):
            before_start = cmd[: cmd.index("ray start")]
            assert re.search(r"\bRAY_AUTH_MODE=token\b", before_start), f"{which}: {cmd}"


def test_launcher_dashboard_listens_on_loopback_only():
    cfg = load(LAUNCHER)
    (head_cmd,) = ray_start_commands(cfg, "head")
    hosts = re.findall(r"--dashboard-host[= ](\S+)", head_cmd)
    assert hosts == ["127.0.0.1"], head_cmd
    everything = yaml.safe_dump(cfg)
    assert "0.0.0.0" not in everything


def test_launcher_copies_the_auth_token_to_every_node():
    cfg = load(LAUNCHER)
    mounts = cfg["file_mounts"]
    assert mounts.get(TOKEN_PATH) == TOKEN_PATH, mounts
    for remote, local in mounts.items():
        assert not re.search(r"\.aws|\.ssh|\.kube", f"{remote} {local}"), (remote, local)


def test_launcher_installs_the_same_dependencies_as_the_runtime_env():
    cfg = load(LAUNCHER)
    installs = [c for c in cfg["setup_commands"] if "pip install" in c]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0])
    reqs = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    assert pip_keys(reqs) == expected_pip()


# --- KubeRay ----------------------------------------------------------------------------


def ray_containers(cluster: dict) -> dict[str, dict]:
    """The Ray container (KubeRay: the first) of the head and of each worker group."""
    spec = cluster["spec"]
    out = {"head": spec["headGroupSpec"]["template"]["spec"]["containers"][0]}
    for group in spec["workerGroupSpecs"]:
        out[group["groupName"]] = group["template"]["spec"]["containers"][0]
    return out


def gpus(container: dict) -> int:
    limits = container.get("resources", {}).get("limits", {})
    return int(limits.get("nvidia.com/gpu", 0))


def test_kuberay_head_has_no_gpu_and_a_worker_group_requests_gpus():
    cluster = kuberay_docs()["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    containers = ray_containers(cluster)
    assert gpus(containers.pop("head")) == 0
    assert any(gpus(c) >= 1 for c in containers.values()), "no GPU worker group"
    for group in cluster["spec"]["workerGroupSpecs"]:
        assert 0 <= group["minReplicas"] <= group["maxReplicas"]
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())


def test_kuberay_token_auth_comes_from_a_secret():
    cluster = kuberay_docs()["RayCluster"]
    auth = cluster["spec"]["authOptions"]
    assert auth["mode"] == "token"
    secret = auth["secretName"]
    # KubeRay refuses token auth without rayVersion >= 2.52.
    major, minor = (int(x) for x in cluster["spec"]["rayVersion"].split(".")[:2])
    assert (major, minor) >= (2, 52)
    for role, container in ray_containers(cluster).items():
        env = {e["name"]: e for e in container.get("env", [])}
        assert env["RAY_AUTH_MODE"].get("value") == "token", role
        token = env["RAY_AUTH_TOKEN"]
        assert "value" not in token, f"{role}: literal RAY_AUTH_TOKEN"
        ref = token["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret, "key": "auth_token"}, role


def walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def test_kuberay_exposes_nothing_outside_the_cluster():
    docs = kuberay_docs()
    head = docs["RayCluster"]["spec"]["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert not head.get("enableIngress", False)
    public = {"LoadBalancer", "NodePort"}
    for doc in docs.values():
        assert not [n for n in walk(doc) if isinstance(n, str) and n in public]
        assert not [n for n in walk(doc) if isinstance(n, dict) and "hostPort" in n]


def test_kuberay_job_runs_on_the_cluster_with_a_config_from_the_repo():
    docs = kuberay_docs()
    job = docs["RayJob"]["spec"]
    assert job["clusterSelector"] == {"ray.io/cluster": docs["RayCluster"]["metadata"]["name"]}
    assert "rayClusterSpec" not in job, "the job would make its own cluster"
    assert job.get("submissionMode", "K8sJobMode") in {"K8sJobMode", "HTTPMode"}
    words = shlex.split(job["entrypoint"])
    assert words[0] == "python" and (REPO / words[1]).is_file(), words[:2]
    assert words[1] == "jobs/scalecap_job.py" and words[2].startswith("--")
    config = words[words.index("--config") + 1]
    assert config.startswith("cluster/") and config.removeprefix("cluster/") not in DEPLOY_FILES
    assert (REPO / config).is_file(), f"{config} does not exist"
    for flag in ("--input", "--output"):
        assert words[words.index(flag) + 1].startswith("s3://"), flag


def test_kuberay_job_runtime_env_matches_pyproject():
    job = kuberay_docs()["RayJob"]["spec"]
    env = yaml.safe_load(job["runtimeEnvYAML"])
    assert re.match(r"(https|s3|gs)://\S+\.zip$", env["working_dir"]), env["working_dir"]
    assert pip_keys(env["pip"]) == expected_pip()


def test_images_and_ray_versions_agree():
    launcher = load(LAUNCHER)
    cluster = kuberay_docs()["RayCluster"]
    images = {launcher["docker"]["image"]}
    images |= {n["image"] for n in walk(cluster) if isinstance(n, dict) and "image" in n}
    assert len(images) == 1, images
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py3\d+-gpu", images.pop())
    assert match, "a versioned rayproject/ray GPU image"
    assert cluster["spec"]["rayVersion"] == match.group(1)


def test_accelerator_types_pinned_by_job_configs_are_offered():
    """A job config that pins accelerator_type must find it declared on a GPU worker type,
    or the autoscaler never starts a node for it."""
    pinned = set()
    for path in job_configs():
        cfg = load(path)
        pinned |= {cfg[role]["accelerator_type"] for role in ("vlm", "llm")
                   if isinstance(cfg.get(role), dict) and cfg[role].get("accelerator_type")}
    launcher_offers = set()
    for t in launcher_gpu_types(load(LAUNCHER)).values():
        launcher_offers |= set(t["resources"])
    kuberay_offers = set()
    for group in kuberay_docs()["RayCluster"]["spec"]["workerGroupSpecs"]:
        kuberay_offers |= set(group.get("resources", {}))
    for acc in pinned:
        assert f"accelerator_type:{acc}" in launcher_offers, acc
        assert f"accelerator_type:{acc}" in kuberay_offers, acc


# --- runtime env ------------------------------------------------------------------------


def test_runtime_env_pip_is_pyproject_without_ray():
    env = load(RUNTIME_ENV)
    assert pip_keys(env["pip"]) == expected_pip()


def test_runtime_env_uploads_the_code_but_not_the_venv():
    from ray._private.runtime_env.packaging import _get_excludes

    env = load(RUNTIME_ENV)
    assert env["working_dir"] == "."
    excluded = _get_excludes(REPO, env["excludes"])  # Ray's own matcher
    for path in (".venv", ".venv/lib/x.py", "out/demo/part-0.parquet", ".git/HEAD",
                 "scalecap_ray/__pycache__/cli.cpython-311.pyc", ".pytest_cache/v"):
        assert excluded(REPO / path), path
    for path in ("jobs/scalecap_job.py", "scalecap_ray/cli.py", "cluster/node-8gpu.yaml",
                 "scalecap_ray/io/output.py"):
        assert not excluded(REPO / path), path


# --- references to job configs ----------------------------------------------------------


def test_job_configs_named_by_cluster_files_and_readme_exist():
    sources = [*sorted(CLUSTER.glob("*.yaml")), REPO / "README.md"]
    named = {(src.name, m) for src in sources
             for m in re.findall(r"--config[= ]+(cluster/[\w.-]+)", src.read_text())}
    assert any(src in (LAUNCHER.name, KUBERAY.name) for src, _ in named)
    for src, config in sorted(named):
        path = REPO / config
        assert path.is_file(), f"{src} names {config}, which does not exist"
        assert path.name not in DEPLOY_FILES, f"{src}: {config} is not a job config"


# --- no secrets -------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key id": re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
    "AWS secret or session key": re.compile(
        r"(?i)aws_(?:secret_access_key|session_token)[\"']?[ \t]*[:=][ \t]*[\"']?[^\s\"'$]"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # Ray's tokens are 64 hex digits; no legitimate value here is a long hex run.
    "hex token": re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])"),
    "literal secret variable": re.compile(
        r"\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|ACCESS_KEY)[A-Z0-9_]*[ \t]*[=:][ \t]*"
        r"[\"']?(?![\"'$])[^\s\"']"),
    "literal kubectl secret": re.compile(r"--from-literal=[^=\s]+=[\"']?(?![\"'$])[^\s\"']"),
}
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|ACCESS_KEY|API_KEY", re.I)


def secrets_in(text: str) -> list[str]:
    found = [what for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:  # not YAML: the patterns above are all there is to check
        docs = []
    for doc in docs:
        for node in walk(doc):
            if (isinstance(node, dict) and isinstance(node.get("name"), str)
                    and SECRET_NAME.search(node["name"]) and "value" in node):
                found.append(f"literal value for {node['name']}")
    return found


@pytest.mark.parametrize("text", [
    "export RAY_AUTH_TOKEN=" + "0123456789abcdef" * 4,
    "RAY_AUTH_TOKEN: hunter2hunter2",
    "aws_access_key_id = " + "AKIA" + "IOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY: abc/def",
    "env:\n  - name: RAY_AUTH_TOKEN\n    value: swordfish\n",
    "# kubectl create secret generic s --from-literal=auth_token=swordfish\n",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
])
def test_secret_detector_finds_secrets(text):
    assert secrets_in(text)


@pytest.mark.parametrize("text", [
    "env:\n  - name: RAY_AUTH_TOKEN\n    valueFrom: {secretKeyRef: {name: s, key: auth_token}}\n",
    "secretName: scalecap-ray-auth\n",
    "# kubectl create secret generic s --from-file=auth_token=$HOME/.ray/auth_token\n",
    'cmd: export RAY_AUTH_TOKEN="$(cat ~/.ray/auth_token)"\n',
])
def test_secret_detector_passes_references(text):
    assert secrets_in(text) == []


@pytest.mark.parametrize("path", sorted(CLUSTER.glob("*.yaml")), ids=lambda p: p.name)
def test_cluster_file_holds_no_secret(path):
    assert secrets_in(path.read_text()) == [], path.name
