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
