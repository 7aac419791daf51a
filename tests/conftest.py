"""Shared fixtures: the smoke model (built once per cache), one vLLM engine per session,
and a local Ray cluster for the tests that run jobs in-process."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def smoke_model_dir() -> Path:
    from scalecap_ray.smoke import ensure_smoke_model

    return ensure_smoke_model()


@pytest.fixture(scope="session")
def local_engine(smoke_model_dir):
    """A real vLLM engine (CPU build) on the smoke model, shared by the engine tests."""
    from scalecap_ray.engine import EngineConfig
    from scalecap_ray.engine.vllm_engine import LocalEngine

    engine = LocalEngine(EngineConfig(model=str(smoke_model_dir)))
    yield engine
    engine.shutdown()


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray for in-process jobs (CLI tests start their own in a subprocess)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"SCALECAP_CACHE": os.environ.get("SCALECAP_CACHE", "")}}
             if os.environ.get("SCALECAP_CACHE") else None)
    yield ray
    ray.shutdown()


def drawn_image(seed: int, size: tuple[int, int] = (160, 120), fmt: str = "PNG") -> bytes:
    """A small deterministic picture (coloured boxes) as encoded bytes."""
    import random

    rnd = random.Random(seed)
    im = Image.new("RGB", size, tuple(rnd.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for _ in range(3):
        x, y = rnd.randrange(size[0] // 2), rnd.randrange(size[1] // 2)
        draw.rectangle((x, y, x + size[0] // 3, y + size[1] // 3),
                       fill=tuple(rnd.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on 127.0.0.1 for the whole session; its
    endpoint and credentials are in the environment, so Ray workers see them too."""
    from tests.servers import S3Server

    server = S3Server()
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket named after the test."""
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def http_server(tmp_path_factory):
    """An HTTP server on 127.0.0.1 serving the example images (see tests/servers.py)."""
    import shutil

    from tests.servers import HTTPImageServer

    root = tmp_path_factory.mktemp("http")
    shutil.copytree(EXAMPLES / "images", root / "images")
    server = HTTPImageServer(root)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vllm_server(smoke_model_dir, tmp_path_factory):
    """vLLM's OpenAI-compatible server (CPU build) on the smoke model, on 127.0.0.1."""
    from tests.apiservers import VLLMServer

    server = VLLMServer(smoke_model_dir, tmp_path_factory.mktemp("vllm") / "server.log")
    yield server
    server.stop()
