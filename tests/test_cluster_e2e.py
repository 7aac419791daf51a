"""The cluster path as a user takes it: a two-node Ray cluster on this machine (head and
one `ray start --address` worker, each with a custom resource of its own) with token
authentication, and the ScaleCap job sent to it with a real `ray job submit` of this
repository as the working dir, running the smoke model in a real vLLM engine."""

import secrets
import subprocess

import pyarrow.parquet as pq
import pytest

from tests.conftest import EXAMPLES, REPO
from tests.localcluster import VENV_BIN, LocalCluster
from tests.test_scalecap_job import CONTRACT

pytestmark = pytest.mark.engine

# Where each stage is pinned (a custom resource only that node has), so the test knows
# which node every actor must be on.
ON_WORKER = ("caption", "verify", "answer")
ON_HEAD = ("load", "questions", "integrate")
LIMIT = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, smoke_model_dir):
    root = tmp_path_factory.mktemp("cluster")
    with LocalCluster(root, token=secrets.token_hex(16), num_cpus=2,
                      resources={"head_node": 100}) as c:
        c.add_worker(num_cpus=2, resources={"worker_node": 100})
        yield c


@pytest.fixture(scope="module")
def submitted(cluster, tmp_path_factory):
    """One ScaleCap job, submitted the way the README says; its output and actors."""
    out = tmp_path_factory.mktemp("job") / "out"
    pins = [f"stages.{s}.resources={{worker_node: 1}}" for s in ON_WORKER]
    pins += [f"stages.{s}.resources={{head_node: 1}}" for s in ON_HEAD]
    pins.append("vlm.resources={worker_node: 1}")
    args = [f"--set={p}" for p in pins]
    proc = cluster.run(
        "ray", "job", "submit", "--address", cluster.dashboard_url, "--working-dir", str(REPO),
        "--", "python", "jobs/scalecap_job.py", "--smoke", "--input",
        str(EXAMPLES / "images.jsonl"), "--output", str(out), "--limit", str(LIMIT), *args,
        timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    actors = cluster.api("/api/v0/actors?detail=1&limit=1000")["data"]["result"]["result"]
    nodes = {n["node_id"]: n["resources_total"] for n in cluster.alive_nodes()}
    return {"stdout": proc.stdout, "out": out, "actors": actors, "nodes": nodes}


def test_requests_with_a_wrong_token_are_refused(cluster):
    env = {**cluster.env, "RAY_AUTH_TOKEN": "not-the-token"}
    proc = subprocess.run([str(VENV_BIN / "ray"), "job", "list", "--address",
                           cluster.dashboard_url], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "Invalid authentication token" in proc.stdout + proc.stderr


def test_submitted_job_writes_the_contract(submitted):
    assert f"wrote {LIMIT} row(s)" in submitted["stdout"]
    table = pq.read_table(submitted["out"])
    assert table.num_rows == LIMIT
    for name, typ in CONTRACT.items():
        assert table.schema.field(name).type == typ, name
    rows = table.to_pylist()
    assert all(r["error"] is None and r["final_caption"] for r in rows)


def test_stage_actors_ran_on_both_nodes(submitted):
    def node_of(resource):
        (node,) = [n for n, res in submitted["nodes"].items() if resource in res]
        return node

    head, worker = node_of("head_node"), node_of("worker_node")
    placed: dict[str, set[str]] = {}
    for actor in submitted["actors"]:
        placed.setdefault(actor["class_name"], set()).add(actor["node_id"])
    stage_classes = {"load": "LoadStage", "caption": "CaptionStage", "verify": "VerifyStage",
                     "questions": "QuestionsStage", "answer": "AnswerStage",
                     "integrate": "IntegrateStage"}
    for stage, cls in stage_classes.items():
        (key,) = [k for k in placed if k.endswith(f"({cls}))")]
        assert placed[key] == {worker if stage in ON_WORKER else head}, (stage, placed[key])
    assert placed["EngineActor"] == {worker}


def test_plan_reads_the_live_cluster(cluster):
    ok = cluster.run("python", "-m", "scalecap_ray", "plan", "--smoke", "--address",
                     cluster.gcs_address, "--set", "vlm.resources={worker_node: 1}")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "1 x {CPU: 2, head_node: 100}" in ok.stdout
    assert "head_node: 100" in ok.stdout and "worker_node: 100" in ok.stdout
    bad = cluster.run("python", "-m", "scalecap_ray", "plan", "--smoke", "--address",
                      cluster.gcs_address, "--set", "vlm.resources={gpu_pool: 1}")
    assert bad.returncode == 2 and "custom resource 'gpu_pool' is on no node" in bad.stdout
