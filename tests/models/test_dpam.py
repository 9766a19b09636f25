"""DPAM: sizes, feature shapes, the distance's definition, variants, and a tiny training run."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from pamflow.models.dpam import DPAM, DPAMConfig, DPAMFeatures
from pamflow.models.losses import jnd_cross_entropy
from pamflow.testing import speech_clips

T = 4000  # 0.25 s at 16 kHz


clips = functools.partial(speech_clips, length=T)


def test_default_config_matches_paper_and_has_about_240k_parameters():
    model = DPAM()
    convs = [b.conv for b in model.features.layers]
    assert len(convs) == 14
    assert [c.out_channels for c in convs] == [32] * 5 + [64] * 5 + [128] * 4
    assert [c.kernel_size[0] for c in convs] == [3] * 14
    assert [c.stride[0] for c in convs] == [2] * 13 + [1]
    assert model.config.dropout == pytest.approx(0.3) and model.config.sample_rate == 22050
    n = sum(p.numel() for p in model.parameters())
    assert 0.8 * 240_000 <= n <= 1.2 * 240_000, n


def test_features_return_every_layer_with_halved_time():
    cfg = DPAMConfig.tiny()
    feats = DPAMFeatures(cfg).eval()(torch.randn(3, 1, 1001))
    assert len(feats) == len(cfg.channels)
    lengths = [1001]
    for _ in cfg.channels[:-1]:
        lengths.append(math.ceil(lengths[-1] / 2))
    lengths.append(lengths[-1])  # the last layer keeps its length
    for f, c, t in zip(feats, cfg.channels, lengths[1:], strict=True):
        assert f.shape == (3, c, t)


@pytest.mark.parametrize("shape", [(1000,), (2, 2, 1000), (2, 1, 1, 1000)])
def test_bad_input_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match="waveform batch"):
        DPAM(DPAMConfig.tiny())(torch.randn(shape), torch.randn(shape))


def test_pair_of_different_lengths_is_rejected():
    with pytest.raises(ValueError, match="same shape"):
        DPAM(DPAMConfig.tiny())(torch.randn(2, 1000), torch.randn(2, 900))


def test_distance_is_zero_for_identical_inputs_and_positive_otherwise():
    torch.manual_seed(0)
    model = DPAM(DPAMConfig.tiny()).eval()
    x = clips(3)
    y = x + 0.01 * torch.randn_like(x)
    d_same, d_diff = model(x, x), model(x, y)
    assert d_same.shape == (3,) and torch.equal(d_same, torch.zeros(3))
    assert (d_diff > 0).all()
    assert torch.equal(model(x.unsqueeze(1), y.unsqueeze(1)), d_diff)  # [B, 1, T] input too


def test_shared_dropout_keeps_identical_inputs_at_zero_in_training():
    torch.manual_seed(0)
    x = clips(2)
    shared = DPAM(DPAMConfig.tiny(shared_dropout=True)).train()
    assert torch.equal(shared(x, x), torch.zeros(2))
    independent = DPAM(DPAMConfig.tiny(shared_dropout=False)).train()
    assert (independent(x, x) > 0).all()  # independent masks look like a difference


def test_distance_is_the_layer_average_of_weighted_mean_abs_differences():
    torch.manual_seed(1)
    model = DPAM(DPAMConfig.tiny()).eval()
    with torch.no_grad():
        for w in model.weights:
            w.copy_(torch.randn_like(w))
    x, y = torch.randn(2, 1500), torch.randn(2, 1500)
    fx, fy = model.features(x), model.features(y)
    per_layer = torch.stack(
        [
            (w.abs()[:, None] * (a - b).abs()).mean(dim=(1, 2))
            for w, a, b in zip(model.weights, fx, fy, strict=True)
        ]
    )
    torch.testing.assert_close(model(x, y), per_layer.sum(0))  # the paper's sum over layers
    mean_model = DPAM(DPAMConfig.tiny(layer_reduction="mean")).eval()
    mean_model.load_state_dict(model.state_dict())
    torch.testing.assert_close(mean_model(x, y), per_layer.mean(0))
    expected = per_layer.sum(0)
    with torch.no_grad():  # only |w| matters: the effective weights are non-negative
        for w in model.weights:
            w.neg_()
    torch.testing.assert_close(model(x, y), expected)
    assert all((w >= 0).all() for w in model.channel_weights())


def test_weights_start_at_one():
    model = DPAM(DPAMConfig.tiny())
    assert all(torch.equal(w, torch.ones_like(w)) for w in model.weights)


def test_gradients_reach_the_input_waveform():
    torch.manual_seed(0)
    model = DPAM(DPAMConfig.tiny()).eval()
    x = clips(2).requires_grad_()
    y = clips(2, seed=5)
    model(x, y).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_classifier_maps_sigmoid_distance_to_two_logits():
    model = DPAM(DPAMConfig.tiny()).eval()
    x, y = clips(4), clips(4, seed=9)
    logits = model.classify(x, y)
    assert logits.shape == (4, 2)
    torch.testing.assert_close(logits, model.classifier(torch.sigmoid(model(x, y))[:, None]))
    dims = [m.out_features for m in model.classifier if isinstance(m, torch.nn.Linear)]
    assert dims == [16, 6, 2]


def test_freeze_features_trains_only_weights_and_classifier():
    torch.manual_seed(0)
    model = DPAM(DPAMConfig.tiny()).freeze_features().train()
    assert not model.features.training  # batch-norm statistics stay put
    before = {k: v.clone() for k, v in model.features.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = clips(4), clips(4, seed=3)
    w0 = model.weights[0].detach().clone()
    loss = jnd_cross_entropy(model.classify(x, y), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    opt.step()
    after = model.features.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(model.weights[0], w0)


def test_load_features_from_a_full_model_or_a_feature_stack():
    torch.manual_seed(0)
    donor = DPAM(DPAMConfig.tiny())
    with torch.no_grad():
        for p in donor.features.parameters():
            p.add_(torch.randn_like(p))
    model = DPAM(DPAMConfig.tiny())
    model.load_features({k: v for k, v in donor.state_dict().items() if k.startswith("features.")})
    x = torch.randn(2, 800)
    assert torch.equal(model.eval().features(x)[-1], donor.eval().features(x)[-1])
    DPAM(DPAMConfig.tiny()).load_features(donor.features.state_dict())
    with pytest.raises(ValueError, match="does not fit"):
        DPAM(DPAMConfig.tiny(channels=(4, 4))).load_features(donor.features.state_dict())


def test_a_few_adam_steps_learn_to_tell_noisy_from_clean_pairs():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ref = clips(8)
    noisy = ref + 0.05 * torch.randn(ref.shape, generator=gen)
    x = torch.cat([ref, ref])
    y = torch.cat([ref, noisy])
    labels = torch.tensor([0] * 8 + [1] * 8)
    model = DPAM(DPAMConfig.tiny()).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):  # training-mode losses: eval-mode batch-norm statistics lag behind
        opt.zero_grad()
        loss = jnd_cross_entropy(model.classify(x, y), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0], losses
