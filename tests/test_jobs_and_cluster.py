from pathlib import Path

import pytest

from scalecap_ray.config import load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((REPO / "cluster").glob("*.yaml")))
def test_cluster_job_configs_validate(path):
    cfg = load_config(path)
    assert cfg.vlm.model


def test_job_entry_point_shows_the_cli_help():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "jobs" / "scalecap_job.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "caption" in proc.stdout
