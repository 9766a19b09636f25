import sys
from pathlib import Path

from pamflow import perturbations
from pamflow.perturbations.docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "perturbations.md"


def test_docs_page_is_generated_from_the_code():
    assert DOC.read_text() == render(), (
        "docs/perturbations.md is stale: run `python -m pamflow.perturbations.docs > docs/perturbations.md`"
    )


def test_every_family_documents_its_mapping():
    text = render()
    for fam in perturbations.families():
        assert f"\n## {fam.name}\n" in text
        assert fam.parameter and fam.unit is not None and fam.mapping in ("linear", "exponential")
        assert fam.value(0) == fam.mild and fam.value(100) == fam.strong
        doc = (type(fam).__doc__ or "") + (sys.modules[type(fam).__module__].__doc__ or "")
        assert len(doc) > 200, f"{fam.name}: document what it models and how rho maps"
