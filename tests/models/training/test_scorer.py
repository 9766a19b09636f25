"""Training the quality scorer (models/training/scorer.py) and its evaluation on domain
datasets (models/scorer_eval.py); the whole journey through the `pamflow` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal

from pamflow.models import registry
from pamflow.models.dpam import DPAM, DPAMConfig
from pamflow.models.evaluate import evaluate
from pamflow.models.scorer import Scorer
from pamflow.models.training.scorer import ScorerTrainConfig, scorer_task, train_scorer
from pamflow.storage import Column
from pamflow.testing import write_dataset

SR = 16000
PAMFLOW = str(Path(sys.executable).parent / "pamflow")


def clip(domain: str, i: int, n: int = SR // 2) -> np.ndarray:
    """A "good" clip: a bright harmonic tone; a "cheap" one: the same tone band-limited to
    300-3000 Hz with noise 30 dB below it (the demo corpus's instruments in miniature)."""
    t = np.arange(n) / SR
    f0 = 160.0 + 20 * (i % 7)
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 40) if f0 * k < 7800)
    if domain == "cheap":
        x = signal.sosfilt(signal.butter(4, [300, 3000], "bandpass", fs=SR, output="sos"), x)
        x = x + np.std(x) * 10 ** (-30 / 20) * np.random.default_rng(i).standard_normal(n)
    return (0.1 * x / np.std(x)).astype(np.float32)


@pytest.fixture(scope="module")
def domain_data(tmp_path_factory) -> str:
    rows = [
        {"audio": clip(d, i), "domain": d, "source_id": f"{d}_{i % 8}"}
        for i in range(24)
        for d in ("good", "cheap")
    ] + [{"audio": clip("good", 99), "domain": "other", "source_id": "other_0"}]
    cols = [Column("audio", "audio"), Column("domain", "string"), Column("source_id", "string")]
    return write_dataset(
        tmp_path_factory.mktemp("domain"), cols, rows, recipe="domain", sample_rate=SR
    )


def test_training_lowers_the_loss_and_evaluates(domain_data, tmp_path, loss_on):
    # no augmentation: 0.25 s of silence would be half of these 0.5-s clips
    cfg = ScorerTrainConfig.tiny(
        lr=1e-2, epochs=2, clip_seconds=0.5, eval_fraction=0.0, augment=False
    )
    task = scorer_task(cfg.model.domains)
    torch.manual_seed(cfg.seed)
    before = loss_on(task, Scorer(cfg.model), domain_data, cfg)
    s = train_scorer([domain_data], tmp_path, cfg)
    assert s["train_rows"] == 48  # the "other" domain is left out
    model = registry.load_model(s["model"])
    after = loss_on(task, model, domain_data, cfg)
    assert np.isfinite(after) and after < before / 2, (before, after)
    res = evaluate(s["model"], [domain_data], figures=tmp_path / "figs")["domain"]
    confusion = res["confusion"]
    assert sum(n for row in confusion.values() for n in row.values()) == res["n"] == 48
    assert confusion["good"]["good"] + confusion["good"]["cheap"] == 24
    assert res["accuracy"] == pytest.approx(
        (confusion["good"]["good"] + confusion["cheap"]["cheap"]) / 48
    )
    assert res["accuracy"] > 0.9 and res["recordings"] == 16
    assert res["mean_score"]["cheap"] > res["mean_score"]["good"]
    assert Path(res["figure"]).stat().st_size > 10_000


def test_other_models_are_not_evaluated_on_domain_data(domain_data):
    with pytest.raises(ValueError, match="domain datasets evaluate models trained on domain"):
        evaluate(DPAM(DPAMConfig.tiny()), [domain_data])


@pytest.mark.integration
def test_cli_builds_trains_evaluates_and_enhances(tmp_path, prefect_server, demo_corpus):
    """What a user types: build a domain dataset, train the scorer on it, evaluate it on
    the held-out recordings, enhance their cheap clips (both initialisations) with a page."""
    env = {**os.environ, "PREFECT_API_URL": prefect_server}

    def pamflow(*args: str) -> str:
        done = subprocess.run([PAMFLOW, *args], capture_output=True, text=True, env=env,
                              timeout=300, cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    pamflow("build", "domain", "--out", "domain", "--num-examples", "48", "--local")
    (tmp_path / "train.yaml").write_text("tiny: true\nclip_seconds: 1.0\neval_fraction: 0.3\n")
    pamflow("train", "scorer", "--data", "domain", "--out", "run", "--config", "train.yaml",
            "--steps", "10")  # fmt: skip
    out = pamflow("eval", "run/model.pt", "--data", "domain", "--split", "eval", "--json", "r.json")
    res = json.loads((tmp_path / "r.json").read_text())["domain"]
    assert "domain.confusion.good.good" in out and res["n"] > 0
    assert res["n"] == sum(n for row in res["confusion"].values() for n in row.values())
    out = pamflow("enhance", "run/model.pt", "domain", "enhanced", "--split", "eval",
                  "--domain", "cheap", "--limit", "2", "--steps", "5", "--init", "both",
                  "--json", "e.json", "--report", "e.html", "--report-items", "1")  # fmt: skip
    result = json.loads((tmp_path / "e.json").read_text())
    assert len(result["rows"]) == 4 and set(result["summary"]) == {"block", "random"}
    assert "moved towards good" in out
    assert len(list((tmp_path / "enhanced" / "block").glob("*.wav"))) == 2
    page = (tmp_path / "e.html").read_text()
    assert page.count("<audio") == 4 and page.count("data:image/png") == 2
