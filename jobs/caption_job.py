"""Entry point for `ray job submit`: the plain caption job (one VLM request per image),
with the arguments of `scalecap-ray caption`.

    ray job submit --address http://127.0.0.1:8265 --runtime-env cluster/runtime-env.yaml \\
        -- python jobs/caption_job.py --config cluster/single-gpu.yaml \\
           --input s3://bucket/images.jsonl --output s3://bucket/captions
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalecap_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["caption", *sys.argv[1:]]))
