"""Adaptive EQ against a scorer (paper 004): the mask, its objective, resynthesis, files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from pamflow.models.enhance import EnhanceConfig, block_layout, enhance, smooth, summarise
from pamflow.models.enhance_files import enhance_paths
from pamflow.models.scorer import Scorer, ScorerConfig

SR = 16000


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    torch.manual_seed(3)
    return Scorer(ScorerConfig.tiny()).eval()


def tone_mix(seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A harmonic tone with a little noise, [1, T]."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 12))
    x = 0.1 * x + 0.005 * np.random.default_rng(seed).standard_normal(t.size)
    return torch.from_numpy(x.astype(np.float32))[None]


def roughness(mask: torch.Tensor) -> float:
    """Mean absolute difference between neighbouring cells (bins and frames)."""
    return float(mask.diff(dim=1).abs().mean() + mask.diff(dim=2).abs().mean())


def test_blocks_tile_the_grid_or_sit_inside_it():
    cfg = EnhanceConfig(block_bins=16, block_frames=20)
    cover = torch.zeros(257, 51)
    for f0, f1, t0, t1 in block_layout(257, 51, cfg, torch.Generator().manual_seed(0)):
        cover[f0:f1, t0:t1] += 1
    assert torch.equal(cover, torch.ones_like(cover))  # every cell exactly once
    placed = block_layout(257, 51, EnhanceConfig(blocks=5), torch.Generator().manual_seed(0))
    assert len(placed) == 5
    assert all(0 <= f0 < f1 <= 257 and 0 <= t0 < t1 <= 51 for f0, f1, t0, t1 in placed)
    m = torch.randn(1, 40, 30)
    assert torch.allclose(smooth(torch.full((1, 40, 30), 2.0), 9, 9), torch.full((1, 40, 30), 2.0))
    assert roughness(smooth(m, 5, 5)) < roughness(m) / 3


def test_no_steps_no_gain_gives_the_input_back(scorer):
    x = tone_mix()
    out = enhance(scorer, x, EnhanceConfig(steps=0, gain_db=0.0))
    assert out.audio.shape == x.shape
    assert float((out.audio - x).abs().max()) < 1e-4  # the input's own phase, resynthesised
    row = out.rows()[0]
    assert abs(row["score_after"] - row["score_before"]) < 1e-4 and row["lsd_db"] < 0.1


def test_the_enhancer_lowers_a_tiny_scorers_score(scorer):
    x = torch.cat([tone_mix(seed=0), tone_mix(seed=1)])
    out = enhance(scorer, x, EnhanceConfig(steps=40, lr=0.1, alpha=0.01, beta=0.01))
    for row in out.rows():
        assert row["score_masked"] < row["score_before"] - 0.05  # what was optimised
        assert row["score_after"] < row["score_before"] - 0.05  # the output, analysed again
        assert 0.0 < row["lsd_db"] < 20.0
    assert out.losses[-1] < out.losses[0]
    assert not torch.equal(out.mask[0], out.mask[1])  # one mask per input, not shared
    s = summarise(out.rows(), lsd_bound_db=20.0, min_drop=0.05)
    assert s["n"] == 2 and s["improved_within_bound"] == 1.0 and s["score_fell"] == 1.0


def test_the_scorer_is_left_as_it_was(scorer):
    scorer.train()
    try:
        enhance(scorer, tone_mix(), EnhanceConfig(steps=2))
        assert scorer.training
        assert all(p.requires_grad and p.grad is None for p in scorer.parameters())
    finally:
        scorer.eval()


def test_block_masks_are_smooth_random_ones_are_not(scorer):
    x = tone_mix()
    kw = dict(steps=30, lr=0.1, alpha=0.0, beta=0.0)
    block = enhance(scorer, x, EnhanceConfig(init="block", **kw))
    rand = enhance(scorer, x, EnhanceConfig(init="random", **kw))
    assert roughness(block.mask) * 5 < roughness(rand.mask)
    # the closeness term keeps the mask small
    tight = enhance(scorer, x, EnhanceConfig(steps=30, lr=0.1, alpha=5.0, beta=5.0))
    assert tight.rows()[0]["mask_rms_db"] < block.rows()[0]["mask_rms_db"] / 2


def test_enhance_a_folder(tmp_path, scorer):
    src = tmp_path / "in" / "sub"
    src.mkdir(parents=True)
    for i in range(3):  # two of one length (one batch), one longer
        x = tone_mix(0.5 if i < 2 else 0.7, seed=i)[0].numpy()
        sf.write(src / f"clip{i}.wav", x, SR)
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    out = tmp_path / "out"
    result = enhance_paths(
        scorer, tmp_path / "in", out, EnhanceConfig(steps=3), inits=["block", "random"]
    )
    assert len(result["rows"]) == 6 and set(result["summary"]) == {"block", "random"}
    for init in ("block", "random"):
        for i in range(3):
            y, sr = sf.read(out / init / "sub" / f"clip{i}.wav")
            assert sr == SR and len(y) == (8000 if i < 2 else 11200)
    one = enhance_paths(scorer, src / "clip0.wav", out, EnhanceConfig(steps=1))  # into a folder
    assert one["rows"][0]["out"] == str(out / "clip0.wav") and (out / "clip0.wav").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        enhance_paths(scorer, tmp_path / "empty", out)
