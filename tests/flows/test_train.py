"""Training flows on a real (temporary) Prefect server, and the deployments file."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest
import yaml

from pamflow.cli import main
from pamflow.flows.build import BUILT_EVENT
from pamflow.pipeline import build

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def jnd_data(tmp_path_factory, demo_corpus):
    out = str(tmp_path_factory.mktemp("jnd") / "jnd")
    build.build_local(
        "jnd",
        {
            "num_examples": 24,
            "shard_size": 12,
            "clip_seconds": 1.0,
            "queries_per_sequence": 4,
            "families": ["white_noise", "eq", "mp3"],
        },
        out,
    )
    return out


def test_dpam_training_flow_then_eval(prefect_server, jnd_data, tmp_path, capsys):
    from pamflow.flows import run_training

    out = tmp_path / "run"
    summary = run_training(
        "dpam",
        [jnd_data],
        str(out),
        {"tiny": True, "max_steps": 4, "batch_size": 4, "clip_seconds": 1.0},
    )
    assert (out / "model.pt").exists() and (out / "metrics.jsonl").exists()
    assert (out / "metrics.png").stat().st_size > 1000
    assert summary  # what the run reported
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("split") == "train" for r in lines)
    assert (
        main(
            ["eval", str(out / "model.pt"), "--data", jnd_data, "--json", str(tmp_path / "r.json")]
        )
        == 0
    )
    results = json.loads((tmp_path / "r.json").read_text())
    assert "jnd" in json.dumps(results) and "auc" in json.dumps(results).lower()


def test_training_flow_refuses_missing_datasets_and_bad_config(prefect_server, jnd_data, tmp_path):
    from pamflow.flows import run_training

    with pytest.raises(ValueError, match="unknown field"):
        run_training("dpam", [jnd_data], str(tmp_path / "x"), {"learning_rate": 1})
    with pytest.raises(ValueError, match="needs nmr"):
        run_training("noresqa", [jnd_data], str(tmp_path / "y"), {"tiny": True})


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    module = path.removeprefix("src/").removesuffix(".py").replace("/", ".")
    return getattr(importlib.import_module(module), name)


def test_prefect_yaml_deployments_point_at_real_flows():
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = set()
    for dep in spec["deployments"]:
        flow = _flow(dep["entrypoint"])
        params = set(inspect.signature(flow.fn).parameters)
        assert set(dep.get("parameters", {})) <= params, dep["name"]
        for trig in dep.get("triggers", []):
            t = DeploymentEventTrigger.model_validate(trig)
            assert BUILT_EVENT in t.expect
            assert set(trig["parameters"]) <= params
        names.add(dep["name"])
    assert {"nightly-jnd", "train-dpam-on-new-jnd"} <= names
