"""Figures with intervals and baselines (issue 17): the bootstrap interval on a case whose
interval is known, precision@K on constructed embeddings, the baselines on known signals,
the levels recipe, and one real `pamflow eval` on tiny NMR and levels data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pamflow.measures import baselines as bl
from pamflow.models import registry
from pamflow.models.agreement import bootstrap_ci, precision_at_k
from pamflow.models.measured import figure
from pamflow.models.noresqa import NORESQA, NORESQAConfig
from pamflow.pipeline.build import build_local
from pamflow.storage import Dataset

SR = 16000
PAMFLOW = str(Path(sys.executable).parent / "pamflow")


def test_bootstrap_interval_of_a_proportion_matches_the_normal_interval():
    # 280 successes in 400 trials: the interval of the mean is 0.7 +- 1.96 sqrt(.21 / 400)
    hits = np.array([1.0] * 280 + [0.0] * 120)
    lo, hi = bootstrap_ci(lambda idx: float(hits[idx].mean()), len(hits), n_boot=2000)
    half = 1.96 * math.sqrt(0.7 * 0.3 / 400)
    assert lo == pytest.approx(0.7 - half, abs=0.008)
    assert hi == pytest.approx(0.7 + half, abs=0.008)
    assert bootstrap_ci(lambda idx: float(hits[idx].mean()), 400, n_boot=2000) == (lo, hi)
    const = np.ones(50)
    assert bootstrap_ci(lambda idx: float(const[idx].mean()), 50) == (1.0, 1.0)
    assert bootstrap_ci(lambda idx: None, 50) is None  # never defined
    assert bootstrap_ci(lambda idx: 1.0, 0) is None


def test_figure_says_which_side_is_better_only_when_the_paired_interval_excludes_zero():
    rng = np.random.default_rng(0)
    good = (rng.random(300) < 0.9).astype(float)
    bad = (rng.random(300) < 0.6).astype(float)
    same = good.copy()
    res = figure(
        lambda i: float(good[i].mean()),
        300,
        {"bad": lambda i: float(bad[i].mean()), "same": lambda i: float(same[i].mean())},
    )
    assert res["n"] == 300 and res["ci95"][0] <= res["value"] <= res["ci95"][1]
    assert res["baselines"]["bad"]["verdict"] == "metric better"
    assert res["baselines"]["same"]["verdict"] == "not distinguishable"
    assert res["baselines"]["same"]["difference_ci95"] == [0.0, 0.0]
    worse = figure(lambda i: float(good[i].mean()), 300, {"b": lambda i: 0.1}, higher=False)
    assert worse["baselines"]["b"]["verdict"] == "baseline better"  # an error of 0.9 vs 0.1


def test_precision_at_k_on_constructed_embeddings():
    labels = np.repeat(np.arange(3), 4)
    points = labels[:, None] * 10.0 + np.arange(12)[:, None] * 0.01  # three tight clusters
    d = np.abs(points - points.T)
    assert precision_at_k(d, labels, 3).tolist() == [1.0] * 12  # the 3 others of its cluster
    # k = 4 takes one item of the nearest other cluster: 3 / 4 for everyone
    assert precision_at_k(d, labels, 4) == pytest.approx([0.75] * 12)
    # the query itself never counts: a label of its own scores 0
    assert precision_at_k(d, np.arange(12), 1).tolist() == [0.0] * 12
    with pytest.raises(ValueError, match="k=12"):
        precision_at_k(d, labels, 12)


def test_baselines_on_known_signals():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(SR).astype(np.float32) * 0.1
    assert bl.mrstft_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert bl.mrstft_distance(x, 0.5 * x) > 0.3
    assert bl.lsd_distance(x, 2 * x, SR) == pytest.approx(20 * math.log10(2), abs=1e-3)
    noise = rng.standard_normal(SR) * np.sqrt(np.mean(x.astype(float) ** 2)) * 0.1
    assert bl.sisdr_distance(x, x + noise) == pytest.approx(-20.0, abs=0.3)  # 20 dB SI-SDR
    # pairwise forms: zero diagonal, symmetric, a gain of 2 is 6.02 dB of long-term spectrum
    clips = np.stack([x, 2 * x, rng.standard_normal(SR) * 0.1])
    lsd = bl.pairwise_lsd(clips)
    assert np.allclose(np.diag(lsd), 0, atol=1e-5) and np.allclose(lsd, lsd.T)
    assert lsd[0, 1] == pytest.approx(20 * math.log10(2), abs=1e-3)
    mr = bl.pairwise_mrstft(clips)
    assert np.allclose(np.diag(mr), 0, atol=1e-6) and mr[0, 1] > 0.5
    s = bl.pairwise_sisdr(clips)
    assert s[0, 1] < -100 and s[0, 2] > 20  # a scaled copy vs an unrelated clip
    if bl.pesq_available():
        speechlike = np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR) * np.repeat(
            rng.random(20) > 0.3, SR // 10
        )
        clean = bl.pesq_distance(speechlike, speechlike, SR)
        noisy = bl.pesq_distance(speechlike, speechlike + rng.standard_normal(2 * SR) * 0.1, SR)
        assert clean < noisy  # PESQ falls (its negation rises) with noise
        assert "pesq" in bl.baseline_distances(SR)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("measured")
    nmr, levels = str(root / "nmr"), str(root / "levels")
    build_local("nmr", {"num_examples": 8, "shard_size": 8, "clip_seconds": 0.5,
                        "sample_rate": SR, "reverb_probability": 0.0}, nmr)  # fmt: skip
    build_local("levels", {"num_examples": 12, "shard_size": 12, "clip_seconds": 0.5,
                           "sample_rate": SR, "families": ["white_noise"], "levels": 2}, levels)  # fmt: skip
    return nmr, levels


def test_levels_recipe_balances_levels_and_shares_a_levels_chain(tiny_data):
    t = Dataset.open(tiny_data[1]).to_table(["level", "strength", "chain"])
    levels, chains = t.column("level").to_pylist(), t.column("chain").to_pylist()
    assert levels == [0, 1] * 6
    assert t.column("strength").to_pylist()[:2] == [0.0, 100.0]
    assert len(set(chains[0::2])) == 1 and chains[0] != chains[1]  # shared within a level


def test_pamflow_eval_reports_figures_with_intervals_and_baselines(tiny_data, tmp_path):
    nmr, levels = tiny_data
    torch.manual_seed(0)
    ckpt = registry.save_model(tmp_path / "nq.pt", NORESQA(NORESQAConfig.tiny()))
    out = tmp_path / "res.json"
    run = subprocess.run(
        [PAMFLOW, "eval", str(ckpt), "--data", nmr, levels, "--json", str(out)],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "nmr.preference_figure.ci95" in run.stdout
    res = json.loads(out.read_text())
    pref = res["nmr"]["preference_figure"]
    assert pref["n"] == 8 and pref["value"] == res["nmr"]["preference_accuracy"]
    assert pref["ci95"][0] <= pref["value"] <= pref["ci95"][1]
    base = pref["baselines"]
    # the full-reference SI-SDR of each side defines the label: 100 % by construction
    assert base["sisdr"]["value"] == 1.0
    assert {"lsd", "mrstft"} <= set(base) and all("verdict" in b for b in base.values())
    err = res["nmr"]["sisdr_error_figure"]
    assert err["value"] == pytest.approx(res["nmr"]["sisdr_mae_db"])
    ret = res["levels"]
    assert ret["n"] == 12 and ret["levels"] == 2
    p10 = ret["precision_at_10"]
    assert 0 <= p10["value"] <= 1 and {"lsd", "mrstft", "sisdr"} <= set(p10["baselines"])
    # two levels of white noise 100 strength apart, 6 clips each (so at most 5 of 10
    # neighbours share the level): the long-term spectra tell the levels apart
    assert 0.45 <= p10["baselines"]["lsd"]["value"] <= 0.5


def test_without_baselines_figures_keep_their_intervals(tiny_data):
    from pamflow.models.evaluate import evaluate

    torch.manual_seed(0)
    res = evaluate(NORESQA(NORESQAConfig.tiny()), list(tiny_data), baselines=False)
    for fig in (res["nmr"]["preference_figure"], res["levels"]["precision_at_10"]):
        assert "baselines" not in fig and fig["ci95"][0] <= fig["value"] <= fig["ci95"][1]
