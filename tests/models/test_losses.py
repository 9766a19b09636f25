"""The training losses (models/losses.py): JND cross-entropy, NT-Xent, the triplet margin
ranking loss, and NORESQA's binned deltas, smoothed targets and masked cross-entropy."""

from __future__ import annotations

import pytest
import torch

from pamflow.models.losses import (
    delta_bins,
    jnd_cross_entropy,
    nt_xent,
    smoothed_targets,
    soft_cross_entropy,
    triplet_margin_ranking,
)


def test_jnd_cross_entropy_checks_labels():
    logits = torch.tensor([[2.0, -2.0], [-2.0, 2.0]])
    assert jnd_cross_entropy(logits, torch.tensor([0.0, 1.0])) < 0.05
    assert jnd_cross_entropy(logits, torch.tensor([1, 0])) > 3.0
    with pytest.raises(ValueError, match="0 \\(same\\) or"):
        jnd_cross_entropy(logits, torch.tensor([0, 2]))


def test_nt_xent_is_lower_for_aligned_pairs_than_shuffled():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 32, generator=g)
    positive = z + 0.1 * torch.randn(16, 32, generator=g)
    aligned = nt_xent(z, positive)
    shuffled = nt_xent(z, positive[torch.roll(torch.arange(16), 1)])
    assert aligned < shuffled
    assert nt_xent(z, positive, temperature=0.1) < aligned  # sharper for well-aligned pairs
    # the definition: each of the 2N rows classified against the 2N - 1 others by cosine
    # similarity / temperature, its positive (row i +- N) as target
    zz = torch.nn.functional.normalize(torch.cat([z, positive]), dim=1)
    sim = zz @ zz.T / 0.5
    rows = []
    for i in range(32):
        others = [j for j in range(32) if j != i]
        target = others.index((i + 16) % 32)
        rows.append(-torch.log_softmax(sim[i, others], 0)[target])
    torch.testing.assert_close(nt_xent(z, positive, temperature=0.5), torch.stack(rows).mean())
    with pytest.raises(ValueError):
        nt_xent(z, positive[:8])


def test_margin_ranking_is_zero_once_the_order_holds_by_more_than_the_margin():
    d_a = torch.tensor([0.1, 0.5, 0.30, 0.50])
    d_b = torch.tensor([0.3, 0.2, 0.35, 0.45])
    closer = torch.tensor([0, 1, 0, 1])  # A, B, A, B closer
    losses = [
        triplet_margin_ranking(d_a[i : i + 1], d_b[i : i + 1], closer[i : i + 1]) for i in range(4)
    ]
    assert losses[0] == 0 and losses[1] == 0  # satisfied by 0.2 and 0.3 > 0.1
    torch.testing.assert_close(losses[2], torch.tensor(0.05))  # 0.1 - (0.35 - 0.30)
    torch.testing.assert_close(losses[3], torch.tensor(0.05))
    wrong = triplet_margin_ranking(d_a[:1], d_b[:1], torch.tensor([1]))
    torch.testing.assert_close(wrong, torch.tensor(0.3))  # 0.1 + (0.3 - 0.1)


def test_delta_bins_are_one_db_wide_and_clamped():
    got = delta_bins(torch.tensor([0.0, 0.99, 1.0, 12.5, -12.5, 39.99, 40.0, 300.0]))
    assert got.tolist() == [0, 0, 1, 12, 12, 39, 39, 39]
    assert delta_bins([5.0], num_classes=10, delta_max=20.0).tolist() == [2]


def test_smoothed_targets_put_0_6_on_the_class_and_0_2_on_neighbours():
    t = smoothed_targets(torch.tensor([5, 0, 39]), 40)
    torch.testing.assert_close(t.sum(1), torch.ones(3))
    assert t[0, 4:7].tolist() == pytest.approx([0.2, 0.6, 0.2])
    assert t[0].count_nonzero() == 3
    assert t[1, :2].tolist() == pytest.approx([0.75, 0.25])  # edge: renormalised
    assert t[2, -2:].tolist() == pytest.approx([0.25, 0.75])
    with pytest.raises(ValueError, match="class indices"):
        smoothed_targets(torch.tensor([40]), 40)


def test_masked_soft_cross_entropy_ignores_undefined_rows():
    probs = torch.tensor([[0.7, 0.3], [0.01, 0.99]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    only_first = soft_cross_entropy(probs, targets, mask=torch.tensor([True, False]))
    torch.testing.assert_close(only_first, -torch.log(torch.tensor(0.7)))
    none = soft_cross_entropy(probs.requires_grad_(), targets, mask=torch.tensor([False, False]))
    assert none.item() == 0.0
    none.backward()  # still part of the graph
