"""The reference docs cover every config field and every output column."""

import re
from pathlib import Path

from pydantic import BaseModel

from scalecap_ray.config import ScaleCapConfig, Stages

DOCS = Path(__file__).resolve().parents[1] / "docs"


def field_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        names.add(name)
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and sub is not Stages:
            names |= field_names(sub)
    return names


def test_configuration_doc_names_every_field():
    doc = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_<>.]+)`", doc, flags=re.M))
    stage_fields = field_names(Stages.model_fields["caption"].annotation)
    sections = {"vlm", "llm", "prompts", "input", "image", "output"}
    assert field_names(ScaleCapConfig) - {"stages"} <= documented | sections
    assert stage_fields <= documented


def test_output_doc_names_every_column():
    from tests.test_scalecap_job import CONTRACT

    doc = (DOCS / "output-schema.md").read_text()
    for column in [*CONTRACT, "object_question_sources", "answer_kept", "object_summary",
                   "stage_usage", "image_hash", "image_uri"]:
        assert f"`{column}`" in doc, column


def test_readme_sizing_table_matches_the_placement_check():
    """Each 'TP n' of the README's sizing table fits 8 GPUs of that kind, and n/2 does not
    (the table names the smallest tensor parallelism that works)."""
    import json

    from scalecap_ray.config import load_config
    from scalecap_ray.pipeline import plan_scalecap_job
    from scalecap_ray.resources.cluster import ClusterShape

    readme = (DOCS.parent / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| Qwen")]
    header = next(line for line in readme.splitlines() if line.startswith("| model | weights"))
    gpus = {"24 GB": "L4", "40 GB": "A100-40G", "80 GB": "H100", "141 GB": "H200"}
    columns = [next(t for k, t in gpus.items() if k in cell)
               for cell in header.strip("|").split("|")[2:]]
    assert len(rows) == 4 and len(columns) == 4
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        models = [f"Qwen/{m.strip()}" + ("" if m.strip().endswith("-Instruct") else "-Instruct")
                  for m in cells[0].split("/")]
        for accelerator, cell in zip(columns, cells[2:], strict=True):
            tp = int(re.search(r"TP (\d+)", cell).group(1))
            node = json.dumps([{"count": 2, "cpus": 64, "gpus": 8,
                               "accelerator_type": accelerator}])
            for model in models:
                def fits(n, model=model, node=node):
                    cfg = load_config(None, [f"llm.model={model}", f"llm.tensor_parallel_size={n}",
                                             "vlm.model=Qwen/Qwen2.5-VL-3B-Instruct"])
                    return plan_scalecap_job(cfg).placement(
                        ClusterShape.from_description(node)).ok
                assert fits(tp), (model, accelerator, tp)
                assert tp == 1 or not fits(tp // 2), (model, accelerator, tp // 2)
                checked += 1
    assert checked == 24
