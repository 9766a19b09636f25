"""Spec validation: a bad field fails before any work, naming the field.

``jnd_spec`` (tests/conftest.py) is the valid spec each case changes one field of."""

from __future__ import annotations

import pytest

from pamflow.datasets.spec import SpecError
from pamflow.pipeline import build


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"families": ["white_noise", "warp_drive"]}, "families"),
        ({"strength": {"low": -5, "high": 50}}, "strength.low"),
        ({"strength": {"low": 60, "high": 40}}, "strength"),
        ({"manifests": ["/nonexistent/manifest.parquet"]}, "manifests"),
        ({"clip_seconds": 3600 * 1.0 / 60}, "clip_seconds"),
        ({"clip_seconds": 0}, "clip_seconds"),
        ({"num_examples": 0}, "num_examples"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_spec_fails_before_work_naming_the_field(change, field, jnd_spec, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SpecError, match=field):
        build.prepare("jnd", {**jnd_spec, **change}, str(out))
    assert not out.exists(), "nothing may be written for a bad spec"
