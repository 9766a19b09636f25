"""NORESQA: speech quality relative to a non-matching reference (NMR).

Architecture (NORESQA paper, sections 3.2-3.5; sizes in :class:`NORESQAConfig`):

- Input: the STFT of a 16 kHz waveform, 512-sample (32 ms) Hamming frames with 50 %
  overlap (hop 256, no centre padding), 256 bins (the paper's "256 positive frequencies
  without the zeroth bin": bins 1..256; ``skip_dc=False`` takes bins 0..255 as the
  reference code does), magnitude and phase (radians) as two channels: ``[B, 2, T, 256]``.
  ``magnitude="log"`` (not the paper's) gives ``log10 |z|`` (floored at -6) instead of
  ``|z|``: on a linear scale a noise 40 dB below the speech moves the input by 1 %, which
  a small model trained briefly does not learn to see.
- Feature extraction: four inception blocks (branches 1x1; 1x1 -> 3x3; 1x1 -> 5x5;
  3x3 max-pool -> 1x1; 16 + 32 + 8 + 8 = 64 channels, ReLU), each followed by max-pooling
  along frequency (by 4, 4, 4, 2: 256 -> 2 bins), so 64 x 2 = 128 features a frame.
- Temporal learning: a TCN of residual blocks (channels 32, 64, 128, 64; kernel 3;
  dilations 1, 2, 4, 8; weight norm; dropout 0.2), non-causal, length preserving.
- The test and reference go through these shared blocks; their outputs are concatenated
  (128 channels) and fed to three per-frame heads (Conv1d kernel 5, batch norm,
  LeakyReLU(0.1), dropout 0.5): preference (2 classes: 0 = the test has the higher SI-SDR),
  SI-SDR difference and SNR difference (40 classes each). Each head's softmax is averaged
  over frames.

What the score means (paper section 3.5): :meth:`NORESQA.score` is the expected value
``Σ_k d_k μ_k`` of the SI-SDR head's distribution ``d`` over the bin centres
``μ_k = (k - 1/2) Δmax / K``: the predicted *absolute* difference, in dB, between the
SI-SDR of the test and that of the reference, each SI-SDR being that recording's quality
against its own (unseen) clean source. It is relative to the reference and carries no
sign: whether the test is the better or the worse one is the preference head's answer
(:meth:`NORESQA.preference`). Being a convex combination of bin centres it is bounded:
with the defaults (K = 40 bins of 1 dB, Δmax = 40 dB, the spread of the training SI-SDRs
from -15 to +25 dB) it lies in [0.5, 39.5] dB; 0.5 dB, not 0, is "no difference". With
clean references (the paper's "absolute" use) a higher score means a more degraded test.
Averaging over n references (``NORESQA^avg``) reduces the variance of that estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from pamflow.models.dpam import waveform_batch
from pamflow.models.losses import bin_centres


@dataclass(frozen=True)
class NORESQAConfig:
    """Sizes of a NORESQA model; defaults follow the paper and reference code (~0.36 M
    parameters). ``inception`` = (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection)
    channels, shared by all blocks; one block per entry of ``freq_pools``."""

    sample_rate: int = field(
        default=16000,
        metadata={"description": "Hz of the model's input (training and evaluation load at it)"},
    )
    n_fft: int = field(
        default=512, metadata={"description": "STFT frame (Hamming window), in samples"}
    )
    hop_length: int = field(default=256, metadata={"description": "STFT hop, in samples"})
    n_bins: int = field(
        default=256,
        metadata={"description": "frequency bins kept: n_bins + skip_dc <= n_fft / 2 + 1"},
    )
    magnitude: str = field(
        default="linear",
        metadata={
            "description": "the magnitude channel: linear (paper, reference code), or log "
            "(log10 of the magnitude, floored at 1e-6: level differences 60 dB below the "
            "speech stay visible)"
        },
    )
    skip_dc: bool = field(
        default=True,
        metadata={
            "description": "leave out the zeroth bin (paper); false: bins from 0, as the "
            "reference code"
        },
    )
    inception: tuple[int, ...] = field(
        default=(16, 24, 32, 16, 8, 8),
        metadata={
            "description": "channels of every inception block: 1x1, 3x3 reduce, 3x3, 5x5 "
            "reduce, 5x5, pool projection"
        },
    )
    freq_pools: tuple[int, ...] = field(
        default=(4, 4, 4, 2),
        metadata={
            "description": "one inception block an entry, each followed by max-pooling along "
            "frequency by it"
        },
    )
    tcn_channels: tuple[int, ...] = field(
        default=(32, 64, 128, 64),
        metadata={"description": "channels of the TCN's residual blocks (dilations 1, 2, 4...)"},
    )
    tcn_kernel: int = field(default=3, metadata={"description": "TCN kernel size (odd)"})
    tcn_dropout: float = field(default=0.2, metadata={"description": "TCN dropout"})
    head_kernel: int = field(
        default=5, metadata={"description": "kernel of the per-frame heads' convs (odd)"}
    )
    head_slope: float = field(
        default=0.1, metadata={"description": "LeakyReLU negative slope of the heads"}
    )
    head_dropout: float = field(default=0.5, metadata={"description": "dropout of the heads"})
    pref_hidden: tuple[int, ...] = field(
        default=(32, 8), metadata={"description": "hidden channels of the preference head"}
    )
    quant_hidden: tuple[int, ...] = field(
        default=(64, 32),
        metadata={"description": "hidden channels of the SI-SDR and SNR difference heads"},
    )
    num_classes: int = field(
        default=40, metadata={"description": "bins of the SI-SDR and SNR difference heads (K)"}
    )
    delta_max: float = field(
        default=40.0, metadata={"description": "the bins split [0, delta_max) dB evenly (Δmax)"}
    )

    @classmethod
    def tiny(cls, **overrides: Any) -> NORESQAConfig:
        """A few-thousand-parameter model for CPU tests and smoke runs."""
        kw: dict[str, Any] = dict(
            inception=(4, 4, 4, 4, 4, 4),
            tcn_channels=(8, 8),
            pref_hidden=(8, 4),
            quant_hidden=(8, 8),
        )
        kw.update(overrides)
        return cls(**kw)

    @property
    def frame_features(self) -> int:
        """Features a frame after the inception blocks (channels x remaining bins)."""
        c1, _, c3, _, c5, cp = self.inception
        bins = self.n_bins
        for p in self.freq_pools:
            bins //= p
        return (c1 + c3 + c5 + cp) * bins

    def __post_init__(self) -> None:
        if len(self.inception) != 6:
            raise ValueError(
                f"NORESQAConfig.inception: need 6 channel counts, got {self.inception}"
            )
        if self.n_bins + int(self.skip_dc) > self.n_fft // 2 + 1:
            raise ValueError(
                f"NORESQAConfig.n_bins={self.n_bins}: an {self.n_fft}-point STFT "
                f"has {self.n_fft // 2 + 1} bins"
            )
        if self.n_bins // math.prod(self.freq_pools) < 1:
            raise ValueError(
                f"NORESQAConfig.freq_pools={self.freq_pools} pool away all {self.n_bins} bins"
            )
        if self.magnitude not in ("linear", "log"):
            raise ValueError(f"NORESQAConfig.magnitude={self.magnitude!r}: need 'linear' or 'log'")
        if self.tcn_kernel % 2 == 0 or self.head_kernel % 2 == 0:
            raise ValueError("NORESQAConfig: tcn_kernel and head_kernel must be odd")


class Inception(nn.Module):
    """Inception block on ``[B, C, T, F]`` followed by max-pooling by ``pool`` along F."""

    def __init__(self, c_in: int, sizes: tuple[int, ...], pool: int):
        super().__init__()
        c1, r3, c3, r5, c5, cp = sizes
        self.b1 = nn.Conv2d(c_in, c1, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, r3, 1), nn.ReLU(), nn.Conv2d(r3, c3, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, r5, 1), nn.ReLU(), nn.Conv2d(r5, c5, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(c_in, cp, 1))
        self.pool = nn.MaxPool2d((1, pool))

    def forward(self, x: Tensor) -> Tensor:
        h = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)
        return self.pool(F.relu(h))


class TemporalBlock(nn.Module):
    """Residual TCN block: two weight-normed dilated convs (ReLU, dropout) + 1x1 skip."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.conv1 = weight_norm(nn.Conv1d(c_in, c_out, kernel, padding=pad, dilation=dilation))
        self.conv2 = weight_norm(nn.Conv1d(c_out, c_out, kernel, padding=pad, dilation=dilation))
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.drop(F.relu(self.conv1(x)))
        h = self.drop(F.relu(self.conv2(h)))
        return F.relu(h + self.skip(x))


def _head(c_in: int, hidden: tuple[int, ...], n_out: int, cfg: NORESQAConfig) -> nn.Sequential:
    """Per-frame head: [Conv1d, BN, LeakyReLU, dropout] per hidden size, then a Conv1d to
    ``n_out`` logits (kernel ``head_kernel`` throughout)."""
    k, dims, layers = cfg.head_kernel, [c_in, *hidden], []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [
            nn.Conv1d(a, b, k, padding=k // 2),
            nn.BatchNorm1d(b),
            nn.LeakyReLU(cfg.head_slope),
            nn.Dropout(cfg.head_dropout),
        ]
    layers.append(nn.Conv1d(dims[-1], n_out, k, padding=k // 2))
    return nn.Sequential(*layers)


def fit_length(x: Tensor, length: int) -> Tensor:
    """Trim the last axis of ``x`` to ``length`` samples, or tile it until it is that long."""
    n = x.shape[-1]
    if n == 0:
        raise ValueError("a reference of 0 samples cannot be fitted to the test's length")
    if n < length:
        x = x.repeat(*([1] * (x.dim() - 1)), math.ceil(length / n))
    return x[..., :length]


class NORESQA(nn.Module):
    """NORESQA: ``forward(test, reference)`` -> per-pair distributions; ``score`` and
    ``preference`` average over non-matching references (see the module docstring)."""

    #: buffers (registered in ``__init__``): the STFT window and the Δ bins' centres (dB)
    window: Tensor
    centres: Tensor

    def __init__(self, config: NORESQAConfig | None = None):
        super().__init__()
        self.config = cfg = config or NORESQAConfig()
        c_out = sum(cfg.inception[i] for i in (0, 2, 4, 5))
        self.inception = nn.Sequential(
            *(
                Inception(2 if i == 0 else c_out, cfg.inception, p)
                for i, p in enumerate(cfg.freq_pools)
            )
        )
        c_in = [cfg.frame_features, *cfg.tcn_channels[:-1]]
        self.tcn = nn.Sequential(
            *(
                TemporalBlock(a, b, cfg.tcn_kernel, 2**i, cfg.tcn_dropout)
                for i, (a, b) in enumerate(zip(c_in, cfg.tcn_channels, strict=True))
            )
        )
        joint = 2 * cfg.tcn_channels[-1]
        self.pref_head = _head(joint, cfg.pref_hidden, 2, cfg)
        self.sisdr_head = _head(joint, cfg.quant_hidden, cfg.num_classes, cfg)
        self.snr_head = _head(joint, cfg.quant_hidden, cfg.num_classes, cfg)
        self.register_buffer("window", torch.hamming_window(cfg.n_fft), persistent=False)
        self.register_buffer(
            "centres", bin_centres(cfg.num_classes, cfg.delta_max), persistent=False
        )

    def spectrogram(self, x: Tensor) -> Tensor:
        """Waveforms ``[B, T]`` (T >= n_fft) -> ``[B, 2, frames, n_bins]``: magnitude and phase
        (radians; 0 where the magnitude is below 1e-6, where the phase is undefined)."""
        cfg = self.config
        x = waveform_batch(x, "waveform").squeeze(1)
        if x.shape[-1] < cfg.n_fft:
            raise ValueError(
                f"NORESQA needs at least n_fft={cfg.n_fft} samples "
                f"({cfg.n_fft / cfg.sample_rate:.3f} s), got {x.shape[-1]}"
            )
        z = torch.stft(
            x,
            cfg.n_fft,
            cfg.hop_length,
            window=self.window.to(x.dtype),
            center=False,
            return_complex=True,
        )
        first = int(cfg.skip_dc)
        z = z[:, first : first + cfg.n_bins].transpose(1, 2)
        re, im = z.real, z.imag
        power = re**2 + im**2
        tiny = power < 1e-12  # phase undefined: 0, and no NaN gradient through atan2
        phase = torch.where(tiny, 0.0, torch.atan2(im, torch.where(tiny, 1.0, re)))
        if cfg.magnitude == "log":
            magnitude = 0.5 * torch.log10(power.clamp_min(1e-12))  # log10 |z|, >= -6
        else:
            magnitude = power.clamp_min(1e-20).sqrt()
        return torch.stack([magnitude, phase], dim=1)

    def embed(self, x: Tensor) -> Tensor:
        """Quality embeddings ``[B, tcn_channels[-1], frames]`` of waveforms ``[B, T]``."""
        h = self.inception(self.spectrogram(x))  # [B, C, frames, bins]
        b, c, t, f = h.shape
        return self.tcn(h.permute(0, 1, 3, 2).reshape(b, c * f, t))

    def forward(self, test: Tensor, reference: Tensor) -> dict[str, Tensor]:
        """For test and reference waveforms of one shape ``[B, T]``: ``pref_logits`` ``[B, 2]``
        (log of the frame-averaged preference probabilities; class 0 = the test has the higher
        SI-SDR), ``sisdr_probs`` and ``snr_probs`` ``[B, K]`` (frame-averaged softmax over the
        Δ bins)."""
        t, r = waveform_batch(test, "test"), waveform_batch(reference, "reference")
        if t.shape != r.shape:
            raise ValueError(
                f"test {tuple(t.shape)} and reference {tuple(r.shape)} must have "
                "one shape (score() fits references to the test's length)"
            )
        e_test, e_ref = self.embed(torch.cat([t, r.to(t.dtype)])).chunk(2)
        h = torch.cat([e_test, e_ref], dim=1)

        def probs(head: nn.Module) -> Tensor:
            return F.softmax(head(h), dim=1).mean(dim=-1)

        return {
            "pref_logits": probs(self.pref_head).clamp_min(1e-12).log(),
            "sisdr_probs": probs(self.sisdr_head),
            "snr_probs": probs(self.snr_head),
        }

    def _references(self, references: Tensor | Sequence[Tensor], test: Tensor) -> list[Tensor]:
        b, length = test.shape
        if isinstance(references, Tensor):
            if references.dim() != 3 or references.shape[0] not in (1, b):
                raise ValueError(
                    f"references: a tensor must be [B, n, T] with B={b}, got "
                    f"{tuple(references.shape)} (or pass a list of tensors)"
                )
            references = list(references.unbind(1))
        if not references:
            raise ValueError("references: need at least one reference")
        out = []
        for i, r in enumerate(references):
            if (
                not isinstance(r, Tensor)
                or r.dim() not in (1, 2)
                or (r.dim() == 2 and r.shape[0] not in (1, b))
            ):
                shape = tuple(r.shape) if isinstance(r, Tensor) else type(r).__name__
                raise ValueError(f"references[{i}]: need [T] or [B={b}, T], got {shape}")
            out.append(fit_length(r, length).to(test).expand(b, length))
        return out

    def _average(
        self,
        test: Tensor,
        references: Tensor | Sequence[Tensor],
        fn: Callable[[dict[str, Tensor]], Tensor],
    ) -> Tensor:
        t = waveform_batch(test, "test").squeeze(1)
        refs = self._references(references, t)
        return torch.stack([fn(self(t, r)) for r in refs]).mean(0)

    def score(self, test: Tensor, references: Tensor | Sequence[Tensor]) -> Tensor:
        """NORESQA score ``[B]`` in dB, averaged over n non-matching references.

        ``references``: ``[B, n, T_r]``, or a list of n tensors ``[T_r]`` (one reference for
        every row) or ``[B, T_r]``; each is trimmed or tiled to the test's length. The value is
        the predicted |SI-SDR(test) - SI-SDR(reference)|, bounded to
        ``[Δmax/2K, Δmax - Δmax/2K]`` ([0.5, 39.5] dB by default); see the module docstring.
        """
        return self._average(test, references, lambda o: o["sisdr_probs"] @ self.centres)

    def distance(self, test: Tensor, reference: Tensor) -> Tensor:
        """The uniform metric interface: :meth:`score` of ``test`` against the one
        non-matching ``reference`` (``[B, T]`` each), in dB."""
        return self.score(test, [reference])

    def preference(self, test: Tensor, references: Tensor | Sequence[Tensor]) -> Tensor:
        """Probability ``[B]`` that the test is the cleaner one (higher SI-SDR), averaged over
        the references: the sign that :meth:`score` leaves out."""
        return self._average(test, references, lambda o: o["pref_logits"].exp()[:, 0])
