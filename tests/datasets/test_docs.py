"""docs/specs.md is generated from the recipes' spec models and stays so."""

from pathlib import Path

from pydantic import BaseModel, Field

from pamflow.datasets import get_recipe, recipe_names
from pamflow.datasets.docs import (
    COMMAND,
    bounds,
    missing_descriptions,
    own_fields,
    registry_choices,
    render,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "specs.md"


def test_specs_page_is_generated_from_the_code():
    assert DOC.read_text(encoding="utf-8") == render(), f"docs/specs.md is stale: run `{COMMAND}`"


def test_every_spec_field_has_a_description():
    missing = missing_descriptions()
    assert not missing, (
        f"spec fields without a description: {missing}; add Field(..., description=...) "
        f"and run `{COMMAND}`"
    )


def test_missing_descriptions_finds_nested_fields_without_one():
    class Inner(BaseModel):
        low: float = 0.0
        high: float = Field(1.0, description="the upper end")

    class Outer(BaseModel):
        span: Inner = Field(default_factory=Inner, description="a range")
        count: int = 3

    assert missing_descriptions([Outer]) == ["Inner.low", "Outer.count"]


def test_every_recipe_and_field_is_on_the_page():
    text = render()
    for name in recipe_names():
        spec = get_recipe(name).Spec
        assert f"\n## {name}\n" in text
        for field in spec.model_fields:
            assert f"`{field}`" in text, f"{name}: {field} is not on the page"


def test_bounds_read_the_pydantic_constraints():
    class M(BaseModel):
        a: float = Field(1.0, ge=0, le=100)
        b: float = Field(1.0, gt=0, le=60)
        c: int = Field(1, ge=1)
        d: str = Field("x", min_length=1)
        e: int = Field(5, lt=10_000_000)

    f = M.model_fields
    assert [bounds(f[k]) for k in "abcde"] == [
        "[0, 100]",
        "(0, 60]",
        ">= 1",
        "length >= 1",
        "< 10000000",
    ]


def test_registry_choices_name_fields_their_class_declares():
    for (cls, field), text in registry_choices().items():
        assert field in own_fields(cls), f"{cls.__name__} declares no field {field!r}"
        assert text
