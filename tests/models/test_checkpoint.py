"""Checkpoints: plain contents (weights_only loads them, no pickled class), atomic writes,
and a round trip that reproduces every model's outputs."""

from __future__ import annotations

import inspect
import json
import pickletools
import zipfile

import numpy as np
import pytest
import torch

import pamflow
from pamflow.models import checkpoint as ck
from pamflow.models import registry
from pamflow.models.cdpam import CDPAMConfig
from pamflow.models.dpam import DPAMConfig

#: every registered model, at its tiny size
CONFIGS = {name: registry.get(name).config.tiny() for name in registry.names()}


def trained_like(name: str) -> torch.nn.Module:
    """A model whose weights and batch-norm statistics differ from a fresh one's."""
    torch.manual_seed(0)
    model = registry.build_model(name, ck.config_to_dict(CONFIGS[name]))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.train()
    with torch.no_grad():
        model(*_inputs(model, torch.randn(2, 2000), torch.randn(2, 2000)))  # running stats
    return model.eval()


def _inputs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A pair model's forward takes (x, y); a no-reference one (scorer) takes x alone."""
    return (x, y) if len(inspect.signature(model.forward).parameters) == 2 else (x,)


def pickled_globals(path) -> set[str]:
    """Every module.name the checkpoint's pickle refers to."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
    return found


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_round_trip_reproduces_outputs(tmp_path, name):
    model = trained_like(name)
    x, y = torch.randn(2, 2000), torch.randn(2, 2000)
    path = registry.save_model(
        tmp_path / f"{name}.pt", model, extra={"epoch": 3, "acc": np.float64(0.75)}
    )

    raw = torch.load(path, weights_only=True)  # plain contents only
    assert raw["model"] == name and raw["pamflow_version"] == pamflow.__version__
    assert raw["config"] == ck.config_to_dict(model.config)
    json.dumps(raw["config"])  # a plain, JSON-able dict
    assert raw["extra"] == {"epoch": 3, "acc": 0.75} and type(raw["extra"]["acc"]) is float
    assert all(isinstance(v, torch.Tensor) for v in raw["state_dict"].values())

    loaded = registry.load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    inputs = _inputs(model, x, y)
    with torch.no_grad():
        a, b = model(*inputs), loaded(*inputs)
    if isinstance(a, dict):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    else:
        assert torch.equal(a, b)


def test_file_refers_to_no_pamflow_or_numpy_class(tmp_path):
    path = registry.save_model(tmp_path / "m.pt", trained_like("noresqa"), extra={"x": np.int64(4)})
    names = pickled_globals(path)
    assert names and all(n.startswith(("torch.", "collections.")) for n in names), names


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    model = trained_like("dpam")
    path = tmp_path / "sub" / "ckpt.pt"
    registry.save_model(path, model, extra={"epoch": 1})
    registry.save_model(path, model, extra={"epoch": 2})  # overwrite in place
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]
    assert ck.load_checkpoint(path)["extra"]["epoch"] == 2


def test_non_plain_extra_fails_before_anything_is_written(tmp_path):
    model = trained_like("dpam")
    path = tmp_path / "bad.pt"
    with pytest.raises(TypeError, match=r"extra\['opt'\]"):
        registry.save_model(path, model, extra={"opt": object()})
    with pytest.raises(TypeError, match="not a plain value"):
        registry.save_model(path, model, extra={"ids": {1, 2}})
    assert list(tmp_path.iterdir()) == []


def test_config_dict_round_trip_restores_tuples():
    cfg = CDPAMConfig.tiny()
    d = json.loads(json.dumps(ck.config_to_dict(cfg)))
    assert isinstance(d["channels"], list)
    assert ck.config_from_dict(CDPAMConfig, d) == cfg
    assert ck.config_from_dict(CDPAMConfig, {}) == CDPAMConfig()
    with pytest.raises(ValueError, match="unknown config fields \\['chanels'\\]"):
        ck.config_from_dict(CDPAMConfig, {"chanels": [4]})


def test_registry_and_bad_files_give_clear_errors(tmp_path):
    assert {"dpam", "cdpam", "noresqa"} <= set(registry.names())
    with pytest.raises(ValueError, match="unknown model 'pam'"):
        registry.build_model("pam", {})
    with pytest.raises(TypeError, match="Linear is not a registered model"):
        registry.save_model(tmp_path / "x.pt", torch.nn.Linear(2, 2))
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="not a pamflow checkpoint"):
        registry.load_model(plain)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable pamflow checkpoint"):
        registry.load_model(junk)
    wrong = tmp_path / "wrong.pt"
    ck.save_checkpoint(
        wrong, "dpam", DPAMConfig.tiny(channels=(4, 4)), trained_like("dpam").state_dict()
    )
    with pytest.raises(ValueError, match="do not fit a dpam model"):
        registry.load_model(wrong)
