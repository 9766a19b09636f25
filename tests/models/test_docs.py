"""docs/training.md is generated from the model registry and the config dataclasses."""

import dataclasses
from pathlib import Path

from pamflow.models import registry
from pamflow.models.docs import COMMAND, description, missing_descriptions, render
from pamflow.models.training.config import TrainConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def test_training_page_is_generated_from_the_code():
    assert DOC.read_text(encoding="utf-8") == render(), (
        f"docs/training.md is stale: run `{COMMAND}`"
    )


def test_every_config_field_has_a_description():
    missing = missing_descriptions()
    assert not missing, (
        f"config fields without a description: {missing}; add "
        f'field(..., metadata={{"description": ...}}) and run `{COMMAND}`'
    )


def test_missing_descriptions_sees_fields_without_one_and_inherits_overrides():
    @dataclasses.dataclass(frozen=True)
    class Base:
        a: int = dataclasses.field(default=1, metadata={"description": "the a"})
        b: int = 2

    @dataclasses.dataclass(frozen=True)
    class Child(Base):
        a: int = 5  # a changed default keeps the base's description
        c: str = "x"

    assert description(Child, "a") == "the a"
    assert missing_descriptions([Child]) == ["Child.b", "Child.c"]


def test_every_model_stage_and_recipe_is_on_the_page():
    text = render()
    for name in registry.names():
        entry = registry.get(name)
        assert f"\n## {name}\n" in text
        for stage in entry.stages:
            assert f"`{stage.name}` reads [`{stage.recipe}`](specs.md#{stage.recipe})" in text
        for cls in (entry.train_config, entry.config):
            assert f"\n### {cls.__name__}\n" in text
            for f in dataclasses.fields(cls):
                assert f"`{f.name}`" in text, f"{cls.__name__}.{f.name} is not on the page"
    for f in dataclasses.fields(TrainConfig):
        assert f"| `{f.name}` |" in text
