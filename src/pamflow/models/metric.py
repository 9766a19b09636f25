"""A trained metric as a differentiable loss: ``pamflow.models.load(CKPT)``.

::

    metric = pamflow.models.load("runs/dpam/model.pt")        # frozen, eval mode, CPU
    loss = metric(enhanced, clean, sample_rate=16000).mean()  # [B] -> scalar
    loss.backward()                                           # gradients reach `enhanced`

:class:`PerceptualLoss` takes two waveform batches ``[B, T]`` (or ``[B, 1, T]``) at
``sample_rate`` (default: the model's), resamples them to the model's rate with
:func:`resample_fft` (differentiable) and returns one distance per item ``[B]``:

Every registered model answers ``distance(x, y)``, so the wrapper never asks which it is:

- DPAM, CDPAM: the learned distance ``D(x, y)`` (>= 0, exactly 0 when ``x == y``).
- NORESQA: the score of ``x`` (test) against ``y`` (a non-matching reference): the
  predicted ``|SI-SDR(x) - SI-SDR(y)|`` in dB, in ``[Δmax/2K, Δmax - Δmax/2K]``
  ([0.5, 39.5] dB by default; see :mod:`pamflow.models.noresqa`). Not symmetric.

The checkpoint is read with ``torch.load(..., weights_only=True)``; the metric's parameters
do not require gradients and it stays in eval mode even inside a module put in training mode
(no dropout noise, batch-norm statistics frozen).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pamflow.models.base import MetricConfig, MetricModel
from pamflow.models.registry import load_model


def resample_fft(x: Tensor, orig_sr: int, target_sr: int) -> Tensor:
    """Resample the last axis of ``x`` from ``orig_sr`` to ``target_sr`` Hz in the Fourier
    domain (differentiable; the method of ``scipy.signal.resample``).

    The ``T`` input samples become ``round(T * target_sr / orig_sr)``; the spectrum is cut
    (downsampling: everything above the new Nyquist frequency is dropped, an ideal low-pass)
    or zero-extended (upsampling), with the Nyquist bin split or joined as scipy does. Exact
    for band-limited periodic signals; for others the signal wraps around, so the first and
    last few milliseconds may ring. Returns ``x`` itself when the rates match.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"resample_fft: sample rates must be > 0, got {orig_sr}, {target_sr}")
    if orig_sr == target_sr:
        return x
    t = x.shape[-1]
    n = max(1, round(t * target_sr / orig_sr))
    spec = torch.fft.rfft(x, dim=-1)
    m = min(n, t)
    keep = spec[..., : m // 2 + 1]
    out = torch.zeros(*x.shape[:-1], n // 2 + 1, dtype=spec.dtype, device=x.device)
    if m % 2 == 0 and n != t:
        # the bin at m/2 is the Nyquist bin of the shorter signal: split it (upsampling:
        # it becomes an ordinary bin standing for +f and -f) or join it (downsampling)
        scale = torch.ones(m // 2 + 1, dtype=x.dtype, device=x.device)
        scale[-1] = 2.0 if n < t else 0.5
        keep = keep * scale
    out = torch.cat([keep, out[..., m // 2 + 1 :]], dim=-1)
    return torch.fft.irfft(out, n=n, dim=-1) * (n / t)


class PerceptualLoss(nn.Module):
    """A frozen metric: ``forward(x, y, sample_rate=None)`` -> distance ``[B]``."""

    def __init__(self, model: MetricModel) -> None:
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the model works at; inputs at other rates are resampled to it."""
        return int(self.model.config.sample_rate)

    @property
    def config(self) -> MetricConfig:
        return self.model.config

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Stays in eval mode: a loss must not change with its parent's training mode."""
        super().train(False)
        return self

    def forward(self, x: Tensor, y: Tensor, sample_rate: int | None = None) -> Tensor:
        """Distance ``[B]`` between ``x`` and ``y`` (``[B, T]`` or ``[B, 1, T]``, one shape),
        given at ``sample_rate`` Hz (default: the model's)."""
        if x.shape != y.shape:
            raise ValueError(
                f"x {tuple(x.shape)} and y {tuple(y.shape)} must have one shape [B, T]"
            )
        sr = self.sample_rate if sample_rate is None else int(sample_rate)
        if not math.isfinite(sr) or sr <= 0:
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
        x, y = resample_fft(x, sr, self.sample_rate), resample_fft(y, sr, self.sample_rate)
        return self.model.distance(x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1))


def load(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    config: Mapping[str, Any] | None = None,
) -> PerceptualLoss:
    """The metric stored at ``path`` (any pamflow checkpoint: a run's ``model.pt`` or
    ``checkpoint.pt``) as a frozen :class:`PerceptualLoss` on ``device``; ``config``
    overrides stored config fields that hold no weights (e.g. codecnet's loss weights)."""
    return PerceptualLoss(load_model(path, config)).to(device)
