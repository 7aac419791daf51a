"""Entry point for `ray job submit`: the ScaleCap job, with the arguments of
`scalecap-ray run`.

    ray job submit --address http://127.0.0.1:8265 --runtime-env cluster/runtime-env.yaml \\
        -- python jobs/scalecap_job.py --config cluster/node-8gpu.yaml \\
           --input s3://bucket/images.jsonl --output s3://bucket/captions

Inside a submitted job RAY_ADDRESS is set, so the job joins the cluster it was sent to.
"""

import sys
from pathlib import Path

# Running from a working-dir upload: make the package importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalecap_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
