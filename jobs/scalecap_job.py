"""Entry point for `ray job submit`: the same arguments as the `scalecap-ray` command.

    ray job submit --working-dir . -- python jobs/scalecap_job.py run \\
        --config cluster/single-gpu.yaml --input /data/images.jsonl --output /data/out

Inside a submitted job RAY_ADDRESS is set, so the job joins the cluster it was sent to.
"""

import sys
from pathlib import Path

# Running from a working-dir upload: make the package importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalecap_ray.cli import main

if __name__ == "__main__":
    sys.exit(main())
