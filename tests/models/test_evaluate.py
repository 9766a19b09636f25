"""evaluate(): known metrics from models with a known distance on constructed datasets."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import stats
from torch import nn

from pamflow.models import registry
from pamflow.models.dpam import DPAM, DPAMConfig
from pamflow.models.evaluate import (
    best_threshold_accuracy,
    evaluate,
    format_table,
    roc_auc,
    two_afc_accuracy,
)
from pamflow.models.noresqa import NORESQA, NORESQAConfig
from pamflow.models.training import DPAMTrainConfig, train_dpam
from pamflow.models.training.data import held_out
from pamflow.storage import Column
from pamflow.testing import write_dataset

SR = 16000
N = SR // 4  # 0.25 s clips


class MeanAbsDistance(nn.Module):
    """A known metric: ``d(x, y) = mean |y - x|``; with a DC offset c between them, d = c."""

    def __init__(self, sample_rate: int = SR) -> None:
        super().__init__()
        self.config = SimpleNamespace(sample_rate=sample_rate)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y - x).abs().mean(-1)

    distance = forward  # the interface every metric answers


class WithClassifier(MeanAbsDistance):
    """...and a JND classifier answering "different" (1) when d > 0.05."""

    def classify_distance(self, d: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.zeros_like(d), d - 0.05], dim=1)


class FixedNoresqa(NORESQA):
    """Always prefers the test (class 0); SI-SDR head all on bin 2 (2.5 dB), SNR on bin 4."""

    def forward(self, test, reference):
        b, k = test.shape[0], self.config.num_classes
        one_hot = lambda i: nn.functional.one_hot(torch.full((b,), i), k).float()  # noqa: E731
        pref = torch.tensor([[1.0, 1e-12]]).log().expand(b, 2)
        return {"pref_logits": pref, "sisdr_probs": one_hot(2), "snr_probs": one_hot(4)}


def tone(i: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * (200 + 30 * i) * np.arange(N) / SR)).astype(np.float32)


# JND: 4 sequences of 4 rows, one reference tone; offset c (= the fake distance) against
# strength: rising in sequences 0-2, falling in sequence 3; a tie at c = 0.04 between a 1 and
# a 0 (the same tone and offset: bit-identical audio); two unlabelled rows
JND_ROWS = [  # (sequence, axis, strength, c, label)
    (0, "white_noise", 10, 0.01, 0),
    (0, "white_noise", 20, 0.02, 0),
    (0, "white_noise", 30, 0.04, 1),
    (0, "white_noise", 40, 0.08, 1),
    (1, "white_noise", 5, 0.015, 0),
    (1, "white_noise", 50, 0.04, 0),
    (1, "white_noise", 60, 0.06, 1),
    (1, "white_noise", 70, 0.09, None),
    (2, "mp3+eq", 10, 0.03, 1),
    (2, "mp3+eq", 20, 0.045, 0),
    (2, "mp3+eq", 30, 0.07, 1),
    (2, "mp3+eq", 80, 0.10, 1),
    (3, "mp3+eq", 10, 0.12, 1),
    (3, "mp3+eq", 20, 0.11, None),
    (3, "mp3+eq", 30, 0.025, 0),
    (3, "mp3+eq", 90, 0.005, 0),
]


@pytest.fixture(scope="module")
def jnd(tmp_path_factory) -> str:
    rows = [
        {
            "reference": tone(0),
            "perturbed": tone(0) + np.float32(c),
            "label": lab,
            "strength": float(s),
            "axis": ax.split("+"),
            "sequence": seq,
            "source_id": f"src-{i}",
        }
        for i, (seq, ax, s, c, lab) in enumerate(JND_ROWS)
    ]
    cols = [
        Column("reference", "audio"),
        Column("perturbed", "audio"),
        Column("label", "int64", True),
        Column("strength", "float64", True),
        Column("axis", "list<string>"),
        Column("sequence", "int64"),
        Column("source_id", "string"),
    ]
    return write_dataset(
        tmp_path_factory.mktemp("jnd"), cols, rows, recipe="jnd", sample_rate=SR, row_group_size=5
    )


# triplets: (c_a, c_b, label, agreement): right, right, right, wrong, tie, right
TRIPLET_ROWS = [
    (0.01, 0.05, 0, 0.9),
    (0.06, 0.02, 1, 0.8),
    (0.03, 0.09, 0, 0.75),
    (0.02, 0.07, 1, 0.6),
    (0.04, 0.04, 0, 0.5),
    (0.08, 0.01, 1, None),
]


@pytest.fixture(scope="module")
def triplets(tmp_path_factory) -> str:
    rows = [
        {
            "reference": tone(i),
            "a": tone(i) + np.float32(ca),
            "b": tone(i) + np.float32(cb),
            "label": lab,
            "agreement": agr,
            "strength_a": 0.0,
            "strength_b": 0.0,
        }
        for i, (ca, cb, lab, agr) in enumerate(TRIPLET_ROWS)
    ]
    cols = [
        Column("reference", "audio"),
        Column("a", "audio"),
        Column("b", "audio"),
        Column("label", "int64", True),
        Column("agreement", "float64", True),
        Column("strength_a", "float64"),
        Column("strength_b", "float64"),
    ]
    return write_dataset(
        tmp_path_factory.mktemp("triplet"),
        cols,
        rows,
        recipe="triplet",
        sample_rate=SR,
        row_group_size=5,
    )


# nmr: (preference, a_sisdr, b_sisdr, a_snr, b_snr)
NMR_ROWS = [
    (0, 11.0, 10.0, 11.0, 10.0),
    (1, 2.0, 5.0, None, 5.0),
    (1, 0.0, 5.0, 0.0, 5.0),
    (0, 12.5, 10.0, None, None),
    (0, 3.0, 3.0, 3.0, 13.0),
    (1, -10.0, 0.0, None, 0.0),
]


@pytest.fixture(scope="module")
def nmr(tmp_path_factory) -> str:
    rows = [
        {
            "a": tone(i),
            "b": tone(i + 9),
            "a_clean": tone(i),
            "b_clean": tone(i + 9),
            "preference": p,
            "a_sisdr": sa,
            "b_sisdr": sb,
            "a_snr": na,
            "b_snr": nb,
        }
        for i, (p, sa, sb, na, nb) in enumerate(NMR_ROWS)
    ]
    cols = [Column(c, "audio") for c in ("a", "b", "a_clean", "b_clean")] + [
        Column("preference", "int64"),
        Column("a_sisdr", "float64"),
        Column("b_sisdr", "float64"),
        Column("a_snr", "float64", True),
        Column("b_snr", "float64", True),
    ]
    return write_dataset(
        tmp_path_factory.mktemp("nmr"), cols, rows, recipe="nmr", sample_rate=SR, row_group_size=5
    )


def brute_auc(d, y) -> float:
    pos = [a for a, t in zip(d, y, strict=True) if t == 1]
    neg = [a for a, t in zip(d, y, strict=True) if t == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_jnd_metrics_of_a_known_distance(jnd):
    res = evaluate(WithClassifier(), [jnd])["jnd"]
    labelled = [(c, lab) for *_, c, lab in JND_ROWS if lab is not None]
    d, y = [c for c, _ in labelled], [lab for _, lab in labelled]
    assert res["n"] == 16 and res["n_labelled"] == 14
    assert res["auc"] == pytest.approx(brute_auc(d, y), abs=1e-9)
    assert res["auc"] == pytest.approx(45.5 / 49)  # 7 x 7 pairs: 45 right, 1 tie
    assert res["accuracy"] == pytest.approx(np.mean([(c > 0.05) == lab for c, lab in labelled]))
    best = max(np.mean([(c > t) == lab for c, lab in labelled]) for t in [0, *d])
    assert res["best_threshold_accuracy"] == pytest.approx(best)
    mono = res["monotonicity"]
    assert mono["sequences"] == 4
    assert mono["mean"] == pytest.approx(0.5)  # +1, +1, +1, -1
    assert mono["per_axis"] == pytest.approx({"white_noise": 1.0, "mp3+eq": 0.0})
    assert evaluate(MeanAbsDistance(), [jnd])["jnd"]["accuracy"] is None  # no classifier


def test_two_afc_with_and_without_min_agreement(triplets):
    res = evaluate(MeanAbsDistance(), [triplets])["triplet"]
    assert res.pop("accuracy_figure")["value"] == pytest.approx(4.5 / 6)  # with its interval
    assert res == {
        "n": 6,
        "accuracy": pytest.approx(4.5 / 6),
        "min_agreement": None,
        "datasets": [triplets],
    }
    res = evaluate(MeanAbsDistance(), [triplets], min_agreement=0.7)["triplet"]
    assert res["n"] == 3 and res["accuracy"] == 1.0  # the wrong one and the tie drop out


def test_noresqa_preference_and_delta_errors(nmr):
    torch.manual_seed(0)
    res = evaluate(FixedNoresqa(NORESQAConfig.tiny()), [nmr])["nmr"]
    assert res["n"] == 6
    assert res["preference_accuracy"] == pytest.approx(3 / 6)
    d_sdr = [abs(sa - sb) for _, sa, sb, _, _ in NMR_ROWS]  # 1, 3, 5, 2.5, 0, 10
    assert res["sisdr_mae_db"] == pytest.approx(np.mean([abs(2.5 - d) for d in d_sdr]))
    d_snr = [abs(na - nb) for *_, na, nb in NMR_ROWS if na is not None and nb is not None]
    assert res["n_snr"] == 3 and res["snr_mae_db"] == pytest.approx(
        np.mean([abs(4.5 - d) for d in d_snr])
    )
    with pytest.raises(ValueError, match="trained on nmr data only"):
        evaluate(MeanAbsDistance(), [nmr])


def test_mos_correlations(tmp_path):
    offsets = [0.0, 0.01, 0.03, 0.02, 0.08, 0.05]
    mos = [4.8, 4.1, 3.2, 3.9, 1.2, 2.9]
    lines = ["reference,test,mos"]
    for k, (c, m) in enumerate(zip(offsets, mos, strict=True)):
        sf.write(tmp_path / f"ref{k}.wav", tone(k), SR, subtype="FLOAT")
        sf.write(tmp_path / f"test{k}.wav", tone(k) + np.float32(c), SR, subtype="FLOAT")
        lines.append(f"ref{k}.wav,test{k}.wav,{m}")
    (tmp_path / "mos.csv").write_text("\n".join(lines) + "\n")
    res = evaluate(MeanAbsDistance(), mos_csv=tmp_path / "mos.csv")["mos"]
    neg = [-c for c in offsets]
    assert res["n"] == 6
    assert res["spearman"] == pytest.approx(1.0)
    assert res["pearson"] == pytest.approx(stats.pearsonr(neg, mos).statistic, abs=1e-6)
    fig = res["spearman_figure"]  # issue 17: the interval and the baselines on the same pairs
    assert fig["n"] == 6 and fig["value"] == pytest.approx(1.0) and fig["ci95"][1] == 1.0
    assert {"lsd", "mrstft", "sisdr"} <= set(fig["baselines"])
    assert all(-1 <= b["value"] <= 1 for b in fig["baselines"].values())


def test_metric_functions_on_edge_cases():
    assert roc_auc([0.1, 0.2], [1, 1]) is None
    assert roc_auc([0.3, 0.3, 0.3], [1, 0, 1]) == 0.5
    assert best_threshold_accuracy([0.2, 0.2], [0, 1]) == (0.5, pytest.approx(-0.8))
    assert two_afc_accuracy([1.0, 2.0], [2.0, 1.0], [0, 0]) == 0.5


def test_real_checkpoint_held_out_split_and_table(jnd, tmp_path):
    torch.manual_seed(0)
    plain = registry.save_model(tmp_path / "plain.pt", DPAM(DPAMConfig.tiny(sample_rate=SR)))
    res = evaluate(plain, [jnd])
    assert res["model"] == "DPAM" and 0.0 <= res["jnd"]["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="held rows out"):
        evaluate(plain, [jnd], split="eval")
    cfg = DPAMTrainConfig.tiny(
        model=DPAMConfig.tiny(sample_rate=SR),
        clip_seconds=0.25,
        max_steps=1,
        eval_fraction=0.3,
        augment=False,
    )
    s = train_dpam([jnd], tmp_path / "run", cfg)
    held = evaluate(s["model"], [jnd], split="eval")["jnd"]
    n_held = sum(held_out(f"src-{i}", 0.3) for i in range(16))
    assert (
        held["n"]
        == n_held
        == s["eval_rows"]
        + sum(held_out(f"src-{i}", 0.3) and JND_ROWS[i][4] is None for i in range(16))
    )
    table = format_table(evaluate(MeanAbsDistance(), [jnd]))
    assert "jnd.auc" in table and f"{45.5 / 49:.4g}" in table
    assert "jnd.monotonicity.per_axis.mp3+eq" in table


def test_simulated_listener_reference_from_recorded_distances(tmp_path):
    """The labels' own predictability: the listener's recorded distance as a detector, and
    the ideal listener-aware accuracy mean(max(p, 1 - p)) from the recorded parameters."""
    from scipy.special import ndtr

    listener = {"threshold": 1.0, "slope": 0.25, "lapse": 0.02, "seed": 0}
    # (listener distance, label); the last row is imported: no distance, no listener
    recorded = [(0.2, 0), (0.6, 0), (0.9, 1), (1.1, 0), (1.3, 1), (2.0, 1), (None, 1)]
    rows = [
        {
            "reference": tone(0),
            "perturbed": tone(0) + np.float32(0.01 * (i + 1)),
            "label": lab,
            "distance": dist,
            "params": {"listener": listener} if dist is not None else {},
            "source_id": f"src-{i}",
        }
        for i, (dist, lab) in enumerate(recorded)
    ]
    cols = [
        Column("reference", "audio"),
        Column("perturbed", "audio"),
        Column("label", "int64", True),
        Column("distance", "float64", True),
        Column("source_id", "string"),
    ]
    data = write_dataset(
        tmp_path / "jnd", cols, rows, recipe="jnd", sample_rate=SR, row_group_size=5
    )
    ref = evaluate(MeanAbsDistance(), [data])["jnd"]
    sim = ref["simulated_listener"]
    d = [x for x, _ in recorded[:-1]]
    y = [lab for _, lab in recorded[:-1]]
    assert sim["n"] == 6
    assert sim["distance_auc"] == pytest.approx(brute_auc(d, y))
    assert sim["distance_best_threshold_accuracy"] == pytest.approx(5 / 6)  # one 1 below a 0
    p = 0.01 + 0.98 * ndtr((np.array(d) - 1.0) / 0.25)
    assert sim["expected_accuracy"] == pytest.approx(np.mean(np.maximum(p, 1 - p)))
    assert ref["n_labelled"] == 7  # the imported row still counts for the model's figures


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reference,test,mos\na.wav,b.wav,good\n", r"line 2: MOS 'good' is not a number"),
        ("a.wav,b.wav\n", r"line 1: need reference path, test path, MOS"),
        ("reference,test,mos\n\na.wav,b.wav,4\nc.wav,d.wav\n", r"line 4: need reference"),
        ("\n\n", r"no rows"),
    ],
)
def test_a_bad_mos_csv_is_one_line_naming_the_line(tmp_path, text, message):
    from pamflow.models.dpam import DPAM, DPAMConfig
    from pamflow.models.evaluate import mos_metrics

    path = tmp_path / "mos.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        mos_metrics(DPAM(DPAMConfig.tiny()).eval(), path, torch.device("cpu"))
