"""CDPAM: sizes, embeddings, the weighted-MLP distance, the classifier, and tiny training runs
(its losses: test_losses.py; the augmentation: training/test_augment.py)."""

from __future__ import annotations

import functools

import torch

from pamflow.models.cdpam import CDPAM, CDPAMConfig, doubling_schedule
from pamflow.models.losses import jnd_cross_entropy, nt_xent
from pamflow.models.training.augment import augment
from pamflow.testing import speech_clips

T = 4000


clips = functools.partial(speech_clips, length=T)


def test_default_channels_double_every_fourth_layer_up_to_1024():
    expected = (64,) * 3 + (128,) * 4 + (256,) * 4 + (512,) * 4 + (1024,)
    assert doubling_schedule(64, 16, 4) == expected
    cfg = CDPAMConfig()
    assert cfg.channels == doubling_schedule(64, 16, 4) and cfg.kernel_size == 15
    assert cfg.embedding_dim == 1024


def test_default_model_has_about_26m_parameters():
    model = CDPAM()
    n = sum(p.numel() for p in model.parameters())
    assert 0.75 * 26e6 <= n <= 1.25 * 26e6, n
    dims = [(m.in_features, m.out_features) for m in model.distance_net.layers]
    assert dims == [(512, 256), (256, 64), (64, 16), (16, 4)]
    proj = [m for m in model.projection if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in proj] == [(512, 512), (512, 256)]


def test_embed_splits_acoustic_and_content_and_project_maps_to_head_size():
    cfg = CDPAMConfig.tiny()
    model = CDPAM(cfg).eval()
    x = clips(3)
    acoustic, content = model.embed(x)
    half = cfg.embedding_dim // 2
    assert acoustic.shape == content.shape == (3, half)
    full = model.encoder(x)
    assert torch.equal(acoustic, full[:, :half]) and torch.equal(content, full[:, half:])
    assert model.project(acoustic).shape == (3, cfg.projection_dims[-1])


def test_encoder_decimates_time_after_every_fourth_layer():
    enc = CDPAM(CDPAMConfig.tiny()).encoder.eval()
    seen = []
    for conv in enc.convs:
        conv.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    enc(torch.randn(1, 1000))
    assert seen == [1000] * 4 + [500] * 4  # 8 layers: one decimation (none after the last)


def test_distance_is_zero_for_identical_inputs_and_positive_otherwise():
    torch.manual_seed(0)
    model = CDPAM(CDPAMConfig.tiny()).eval()
    x = clips(3)
    y = x + 0.05 * torch.randn_like(x)
    assert torch.equal(model(x, x), torch.zeros(3))
    d = model(x, y)
    assert d.shape == (3,) and (d > 0).all()
    assert torch.equal(model.train()(x, x), torch.zeros(3))  # one batch-norm pass for both


def test_distance_sums_weighted_abs_differences_over_mlp_layers():
    torch.manual_seed(2)
    model = CDPAM(CDPAMConfig.tiny()).eval()
    net = model.distance_net
    with torch.no_grad():
        for w in net.weights:
            w.copy_(torch.randn_like(w))
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    ha, hb = torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)
    expected = torch.zeros(4)
    for i, (layer, w) in enumerate(zip(net.layers, net.weights, strict=True)):
        ha, hb = layer(ha), layer(hb)
        if i < len(net.layers) - 1:
            ha, hb = (torch.nn.functional.leaky_relu(h, 0.01) for h in (ha, hb))
        expected += (w * (ha - hb)).abs().sum(1)
    torch.testing.assert_close(model.distance_from_embeddings(a, b), expected)
    # L2 normalisation: the distance ignores the embeddings' scale
    torch.testing.assert_close(model.distance_from_embeddings(3 * a, b), expected)


def test_gradients_reach_the_input_waveform():
    model = CDPAM(CDPAMConfig.tiny()).eval()
    x = clips(2).requires_grad_()
    model(x, clips(2, seed=4)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_classifier_is_1_16_6_2():
    model = CDPAM(CDPAMConfig.tiny()).eval()
    dims = [
        (m.in_features, m.out_features) for m in model.classifier if isinstance(m, torch.nn.Linear)
    ]
    assert dims == [(1, 16), (16, 6), (6, 2)]
    assert model.classify(clips(2), clips(2, seed=3)).shape == (2, 2)


def test_a_few_adam_steps_lower_the_jnd_and_contrastive_losses():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ref = clips(8)
    noisy = ref + 0.05 * torch.randn(ref.shape, generator=gen)
    x, y = torch.cat([ref, ref]), torch.cat([ref, noisy])
    labels = torch.tensor([0] * 8 + [1] * 8)
    model = CDPAM(CDPAMConfig.tiny()).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = jnd_cross_entropy(model.classify(x, y), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses

    # contrastive: same content at two gains/shifts should map close together
    views = [augment(ref, 16000, gen, silence_s=0.01) for _ in range(2)]
    losses = []
    for _ in range(15):
        opt.zero_grad()
        z = [model.project(model.embed(v)[1]) for v in views]
        loss = nt_xent(*z, temperature=0.3)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.75 * losses[0], losses
