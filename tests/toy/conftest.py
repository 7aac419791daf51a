"""One vLLM engine on the committed toy checkpoint for the toy tests that need one."""

import pytest


@pytest.fixture(scope="package")
def toy_engine():
    from scalecap_ray.engine import EngineConfig
    from scalecap_ray.engine.vllm_engine import LocalEngine
    from scalecap_ray.toy import toy_model_dir

    engine = LocalEngine(EngineConfig(model=str(toy_model_dir())))
    yield engine
    engine.shutdown()
