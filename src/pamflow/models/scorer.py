"""A learned quality scorer (Verma & Berger, paper 004, section III).

Architecture (sizes in :class:`ScorerConfig`):

- Input: the log-magnitude spectrogram of a 16 kHz waveform: a 512-point FFT of 30 ms
  (480-sample) Hann frames every 10 ms (160 samples), centred frames, all 257 bins;
  magnitudes scaled so a full-scale sine peaks at 1, floored at ``floor_db`` (-100 dB) and
  taken as natural logs: ``X = ln(|S| + floor)``, ``[B, F=257, T]`` (:meth:`Scorer.spectrogram`).
- Level: with ``level_invariant`` (default) each spectrogram has its mean over all bins
  and frames subtracted, so a gain (a constant added to ``X``) changes nothing: the scorer
  cannot learn "louder is better", and an equaliser cannot cheat with one.
- A shallow CNN: batch norm on the input, then one block a entry of ``channels``
  (3x3 conv, batch norm, ReLU, 2x2 max-pool, spatial dropout ``conv_dropout``); the feature
  maps are averaged over time, so any length is scored, and the head (dropout ``dropout``,
  one linear layer over channels x remaining bins, so it knows where in frequency a pattern
  sits) gives a logit; the score is its sigmoid, in [0, 1]: 0 = ``domains[0]`` ("good"),
  1 = ``domains[1]`` ("cheap"). Trained with the squared error of the score against 0/1
  (:mod:`pamflow.models.training.scorer`).

What the metric means: ``distance(x, y) = |score(x) - score(y)|``, the difference of the
two clips' scores: 0 when they sound equally good (``d(x, x) = 0``), 1 at most. As a loss
against a good-domain reference it pulls a clip's score towards the reference's; to
improve a clip on its own, minimise :meth:`Scorer.score` (what
:mod:`pamflow.models.enhance` does through an adaptive EQ mask).

Saliency (paper Fig. 3): :meth:`Scorer.cam` is the class-activation map: the head's
weights applied to the last feature maps, so that the logit is the bias plus the mean over
frames of the map summed over frequency; positive cells push the score towards
``domains[1]``, negative ones towards ``domains[0]``; upsampled to the spectrogram's grid.
:meth:`Scorer.gradient_map` is ``|d score / d X|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pamflow.models.dpam import waveform_batch


@dataclass(frozen=True)
class ScorerConfig:
    """Sizes of a scorer; defaults follow the paper's front end (512-point FFT, 30 ms Hann
    window, 10 ms hop, 16 kHz) with a three-block CNN of ~15 k parameters."""

    sample_rate: int = field(
        default=16000,
        metadata={"description": "Hz of the model's input (training and evaluation load at it)"},
    )
    n_fft: int = field(default=512, metadata={"description": "FFT size, in samples"})
    win_length: int = field(
        default=480, metadata={"description": "Hann window, in samples (30 ms at 16 kHz)"}
    )
    hop_length: int = field(
        default=160, metadata={"description": "hop between frames, in samples (10 ms)"}
    )
    floor_db: float = field(
        default=-100.0,
        metadata={"description": "floor of the magnitudes, dB re a full-scale sine"},
    )
    level_invariant: bool = field(
        default=True,
        metadata={
            "description": "subtract each spectrogram's mean log magnitude, so a gain "
            "changes nothing"
        },
    )
    channels: tuple[int, ...] = field(
        default=(16, 32, 32),
        metadata={"description": "one conv block (3x3 conv, BN, ReLU, 2x2 max-pool) an entry"},
    )
    kernel_size: int = field(default=3, metadata={"description": "conv kernel (odd)"})
    conv_dropout: float = field(
        default=0.1, metadata={"description": "spatial dropout after each conv block"}
    )
    dropout: float = field(default=0.5, metadata={"description": "dropout before the head"})
    domains: tuple[str, ...] = field(
        default=("good", "cheap"),
        metadata={
            "description": "the two domain labels: the first scores 0, the second 1 (rows "
            "of other domains are left out)"
        },
    )

    @classmethod
    def tiny(cls, **overrides: Any) -> ScorerConfig:
        """A few-hundred-parameter model for CPU tests and smoke runs."""
        kw: dict[str, Any] = dict(channels=(4, 4))
        kw.update(overrides)
        return cls(**kw)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def head_bins(self) -> int:
        """Frequency bins left after the conv blocks' pooling."""
        bins = self.n_bins
        for _ in self.channels:
            bins //= 2
        return bins

    def __post_init__(self) -> None:
        checks = {
            "win_length": 1 <= self.win_length <= self.n_fft,
            "hop_length": self.hop_length >= 1,
            "channels": bool(self.channels) and all(int(c) >= 1 for c in self.channels),
            "kernel_size": self.kernel_size >= 1 and self.kernel_size % 2 == 1,
            "conv_dropout": 0.0 <= self.conv_dropout < 1.0,
            "dropout": 0.0 <= self.dropout < 1.0,
            "domains": len(self.domains) == 2 and len(set(self.domains)) == 2,
        }
        bad = {k: getattr(self, k) for k, ok in checks.items() if not ok}
        if bad:
            raise ValueError(f"ScorerConfig: invalid value(s) {bad}")
        if self.head_bins < 1:
            raise ValueError(
                f"ScorerConfig.channels: {len(self.channels)} blocks pool away all "
                f"{self.n_bins} bins of a {self.n_fft}-point FFT"
            )


class Scorer(nn.Module):
    """``score(x) -> [B]`` in [0, 1] for waveforms ``[B, T]`` at ``config.sample_rate``;
    ``distance(x, y) = |score(x) - score(y)|``. See the module docstring."""

    window: Tensor  # the Hann window (a buffer, not stored in checkpoints)

    def __init__(self, config: ScorerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ScorerConfig()
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)
        self.input_norm = nn.BatchNorm2d(1)
        blocks: list[nn.Module] = []
        c_in, k = 1, cfg.kernel_size
        for c in cfg.channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c, k, padding=k // 2),
                    nn.BatchNorm2d(c),
                    nn.ReLU(),
                    nn.MaxPool2d(2),
                    nn.Dropout2d(cfg.conv_dropout),
                )
            )
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.head_dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(c_in * cfg.head_bins, 1)

    # -- the front end -------------------------------------------------------------------
    def stft(self, x: Tensor) -> Tensor:
        """The complex STFT ``[B, F, T]`` of waveforms ``[B, T]`` (or ``[B, 1, T]``),
        scaled so a full-scale sine peaks at magnitude 1."""
        cfg = self.config
        x = waveform_batch(x, "x")[:, 0]
        spec = torch.stft(
            x,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window.to(x.dtype),
            center=True,
            return_complex=True,
        )
        return spec * (2.0 / float(self.window.sum()))

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """Waveforms ``[B, length]`` from an STFT made by :meth:`stft` (inverse scaling)."""
        cfg = self.config
        return torch.istft(
            spec * (float(self.window.sum()) / 2.0),
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window.to(spec.real.dtype),
            center=True,
            length=length,
        )

    @property
    def floor(self) -> float:
        return 10.0 ** (self.config.floor_db / 20.0)

    def log_magnitude(self, spec: Tensor) -> Tensor:
        """``ln(|S| + floor)`` of a complex STFT."""
        return torch.log(spec.abs() + self.floor)

    def spectrogram(self, x: Tensor) -> Tensor:
        """The log-magnitude spectrogram ``[B, F, T]`` the scorer reads."""
        return self.log_magnitude(self.stft(x))

    # -- the network ---------------------------------------------------------------------
    def features(self, spec: Tensor) -> Tensor:
        """The last feature maps ``[B, C, F', T']`` of log-magnitude spectrograms
        ``[B, F, T]``."""
        if spec.dim() != 3 or spec.shape[1] != self.config.n_bins:
            raise ValueError(
                f"spectrogram: expected [B, {self.config.n_bins}, T], got {tuple(spec.shape)}"
            )
        if self.config.level_invariant:
            spec = spec - spec.mean(dim=(1, 2), keepdim=True)
        return self.blocks(self.input_norm(spec.unsqueeze(1)))

    def _head_weights(self) -> Tensor:
        """The head's weights as ``[C, F']``."""
        return self.head.weight.view(-1, self.config.head_bins)

    def logit_spectrogram(self, spec: Tensor) -> Tensor:
        """The logit ``[B]`` of log-magnitude spectrograms ``[B, F, T]``."""
        pooled = self.features(spec).mean(dim=3).flatten(1)  # [B, C * F']
        return self.head(self.head_dropout(pooled)).squeeze(1)

    def score_spectrogram(self, spec: Tensor) -> Tensor:
        """The score ``[B]`` in [0, 1] of log-magnitude spectrograms ``[B, F, T]``."""
        return torch.sigmoid(self.logit_spectrogram(spec))

    def logit(self, x: Tensor) -> Tensor:
        return self.logit_spectrogram(self.spectrogram(x))

    def score(self, x: Tensor) -> Tensor:
        """The score ``[B]`` of waveforms: 0 = ``domains[0]`` (good), 1 = ``domains[1]``."""
        return torch.sigmoid(self.logit(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.score(x)

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        """``|score(x) - score(y)|`` ``[B]``: how far apart the two clips' scores are (each
        batch scored on its own, so ``d(x, x)`` is exactly 0)."""
        x, y = waveform_batch(x, "x"), waveform_batch(y, "y")
        if x.shape != y.shape:
            raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must have one shape")
        return (self.score(x) - self.score(y)).abs()

    # -- saliency ------------------------------------------------------------------------
    def cam(self, spec: Tensor) -> Tensor:
        """The class-activation map ``[B, F, T]`` of spectrograms ``[B, F, T]``: positive
        where the scorer hears ``domains[1]`` (cheap), negative where ``domains[0]`` (good);
        the logit is the head's bias plus the mean over frames of the (un-upsampled) map
        summed over frequency."""
        with torch.no_grad():
            a = self.features(spec)  # [B, C, F', T']
            k = torch.einsum("bcft,cf->bft", a, self._head_weights())
            up = F.interpolate(k.unsqueeze(1), size=spec.shape[1:], mode="bilinear")
        return up.squeeze(1)

    def gradient_map(self, spec: Tensor) -> Tensor:
        """``|d score / d X|`` ``[B, F, T]``: how much each cell of the spectrogram moves
        the score (in eval mode, no dropout)."""
        with torch.enable_grad():
            x = spec.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.score_spectrogram(x).sum(), x)
        return grad.abs()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def db_per_neper() -> float:
    """dB per natural-log unit of magnitude (``20 / ln 10``): masks are in nepers."""
    return 20.0 / math.log(10.0)


__all__ = ["Scorer", "ScorerConfig", "db_per_neper", "parameter_count"]
