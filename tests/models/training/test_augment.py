"""The online waveform augmentation (models/training/augment.py): silence at either end, a
gain in range, reproducible from its generator."""

from __future__ import annotations

import pytest
import torch

from pamflow.models.training.augment import augment


def test_augment_shifts_by_silence_and_scales_by_a_gain_in_range():
    x = torch.randn(32, 2000) + 3.0  # no zeros: silence is easy to see
    n = 400  # 0.025 s at 16 kHz
    out = augment(x, 16000, torch.Generator().manual_seed(0), silence_s=0.025)
    assert out.shape == x.shape and out.dtype == x.dtype
    starts = 0
    for row, src in zip(out, x, strict=True):
        if (row[:n] == 0).all():
            starts += 1
            body, ref = row[n:], src[: 2000 - n]
        else:
            assert (row[-n:] == 0).all()
            body, ref = row[:-n], src[n:]
        gain = body / ref
        torch.testing.assert_close(gain, gain[0].expand_as(gain))
        assert 10 ** (-20 / 20) - 1e-6 <= gain[0] <= 1.0 + 1e-6
    assert 0 < starts < 32  # both sides occur
    again = augment(x, 16000, torch.Generator().manual_seed(0), silence_s=0.025)
    other = augment(x, 16000, torch.Generator().manual_seed(1), silence_s=0.025)
    assert torch.equal(out, again) and not torch.equal(out, other)
    assert augment(x[:, None], 4000, torch.Generator()).shape == (32, 1, 2000)  # 0.25 s
    with pytest.raises(ValueError, match="does not fit"):
        augment(x, 16000, torch.Generator(), silence_s=0.25)
