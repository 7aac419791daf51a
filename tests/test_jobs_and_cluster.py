"""The job entry points and the example job configs in cluster/."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scalecap_ray.cli import main
from scalecap_ray.config import load_config

REPO = Path(__file__).resolve().parents[1]
JOB_CONFIGS = ["single-gpu.yaml", "node-8gpu.yaml", "multi-node.yaml"]
# Cluster definitions and the runtime environment: tested in tests/test_cluster_files.py.
INFRA = ["launcher.yaml", "kuberay.yaml", "runtime-env.yaml"]


def test_every_cluster_file_is_accounted_for():
    assert sorted(p.name for p in (REPO / "cluster").glob("*.yaml")) == sorted(
        JOB_CONFIGS + INFRA)


@pytest.mark.parametrize("name", JOB_CONFIGS)
def test_job_configs_validate_and_fit_the_cluster_they_describe(name, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    path = REPO / "cluster" / name
    cfg = load_config(path)
    assert cfg.vlm.model and cfg.llm.model
    # Each config names, in a comment, the `plan` command for the cluster it is made for.
    (check,) = [line for line in path.read_text().splitlines() if line.startswith("# Check:")]
    args = shlex.split(check.removeprefix("# Check:").strip())
    assert args[:2] == ["scalecap-ray", "plan"] and f"cluster/{name}" in args
    assert main(args[1:]) == 0
    assert "fits: yes" in capsys.readouterr().out


@pytest.mark.parametrize(("entry", "command"), [("scalecap_job.py", "run"),
                                                ("caption_job.py", "caption")])
def test_job_entry_points_take_the_arguments_of_their_command(entry, command):
    proc = subprocess.run([sys.executable, str(REPO / "jobs" / entry), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: scalecap-ray {command}" in proc.stdout
    assert "--cluster-resources" in proc.stdout and "--input" in proc.stdout
