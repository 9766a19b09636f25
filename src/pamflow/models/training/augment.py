"""The papers' online waveform augmentation (CDPAM section 3; DPAM's code): silence at the
start or the end and a random gain, drawn per row from an explicit ``torch.Generator``."""

from __future__ import annotations

import torch
from torch import Tensor

from pamflow.models.dpam import waveform_batch


def augment(
    batch: Tensor,
    sample_rate: int,
    generator: torch.Generator,
    silence_s: float = 0.25,
    gain_db: tuple[float, float] = (-20.0, 0.0),
) -> Tensor:
    """CDPAM's online augmentation, each row independently: ``silence_s`` of silence at the
    start or at the end (probability 1/2 each), then a gain drawn uniformly in ``gain_db``.

    The length is kept: silence at the start delays the content by ``n = round(silence_s *
    sample_rate)`` samples (its last ``n`` samples drop); silence at the end advances it by
    ``n`` (its first ``n`` samples drop). Call it separately on the two sides of a pair to
    make the metric shift and level invariant. ``batch`` is ``[B, T]`` or ``[B, 1, T]``;
    the result has the same shape and dtype; all draws come from the CPU ``generator``.
    """
    x = waveform_batch(batch, "batch")
    b, t = x.shape[0], x.shape[-1]
    n = round(silence_s * sample_rate)
    if not 0 <= n < t:
        raise ValueError(
            f"augment: silence_s={silence_s} s at {sample_rate} Hz is {n} "
            f"samples, which does not fit clips of {t} samples"
        )
    lo, hi = gain_db
    if lo > hi:
        raise ValueError(f"augment: gain_db must be (low, high), got {gain_db}")
    at_start = torch.rand(b, generator=generator) < 0.5
    gains = 10.0 ** (
        (lo + (hi - lo) * torch.rand(b, generator=generator, dtype=torch.float64)) / 20.0
    )
    zeros = x.new_zeros(b, 1, n)
    delayed = torch.cat([zeros, x[..., : t - n]], dim=-1)
    advanced = torch.cat([x[..., n:], zeros], dim=-1)
    out = torch.where(_to(at_start, x.device)[:, None, None], delayed, advanced)
    out = out * _to(gains, x.device).to(x.dtype)[:, None, None]
    return out.reshape(batch.shape)


def _to(draws: Tensor, device: torch.device) -> Tensor:
    """CPU draws onto ``device`` without stalling it: a copy from pageable memory waits for
    the GPU to finish its queue, one from pinned memory does not."""
    if device.type != "cuda":
        return draws.to(device)
    return draws.pin_memory().to(device, non_blocking=True)
