"""codecnet: a neural approximation of a low-bitrate MP3 codec, and the perceptual loss it
gives (Ananthabhotla, Ewert and Paradiso, "Towards a perceptual loss: using a neural
network codec approximation as a loss for generative audio models", sections 4 and 6).

One model, two kinds (``CodecNetConfig.kind``), both trained with an L1 loss to map a
lossless clip to its MP3 coding (the ``codec`` recipe's sample-aligned pairs):

- ``spectral`` (section 4.1, Table 1): :class:`pamflow.models.unet.SpectralUNet` on the
  magnitude STFT (1024 points, hop 512, no centring: a 66,048-sample patch is 128 frames
  of 512 bins, the Nyquist bin dropped). It predicts the coding's magnitude spectrogram.
- ``time`` (section 4.2): :class:`pamflow.models.unet.TimeUNet` on the waveform
  (16,384-sample patches). It predicts the coded waveform. Table 1's second column is
  :meth:`CodecNetConfig.time`.

**The magnitude scale.** Magnitudes enter and leave the spectral net on a [0, 1] scale that
the output sigmoid reaches: the power of a bin relative to a full-scale sine's peak (a
Hann window's sum over 2, squared), in dB with a soft floor, mapped linearly so that
``floor_db`` is 0 and ``ceiling_db`` is 1::

    level_db = 10 log10(|X|^2 / (sum(w)/2)^2 + 10^(floor_db/10))     >= floor_db, smooth
    s        = (level_db - floor_db) / (ceiling_db - floor_db)       in [0, 1]

(clamped at 1 above ``ceiling_db``: +10 dB over full scale by default, which no clip
reaches). With the defaults, 1 on this scale is 110 dB; what the MP3 removes (its
low-pass, the holes its masking model leaves) lands near 0.

**As a loss** (:meth:`CodecNet.distance`, what ``pamflow.models.load(CKPT)`` returns),
for a prediction ``x`` and a target ``y`` (waveforms), with ``||.||`` the mean absolute
difference per item and ``phi_m`` the hidden layers' activations:

- spectral, the paper's eq. 3: ``time_weight * ||x - y|| + prediction_weight *
  ||C(S(x)) - C(S(y))|| + feature_weight * sum_m w_m ||phi_m(S(x)) - phi_m(S(y))||``,
  ``S`` the normalised magnitude above;
- time, eq. 4: ``prediction_weight * ||C(x) - C(y)|| + feature_weight * sum_m w_m
  ||phi_m(x) - phi_m(y)||`` (``time_weight`` is 0 in :meth:`CodecNetConfig.time`; eq. 4
  has no such term).

``w_m`` are ``layer_weights`` (one per hidden layer: ``2 * layers - 1`` spectral,
``2 * layers`` time; empty: ``1/M`` each). The weights hold no parameters, so
``pamflow.models.load(CKPT, config={"feature_weight": 0.5})`` changes them. In eval mode
(the loss wrapper keeps it there) ``distance(x, x) == 0`` exactly. Inputs of any length
are zero-padded at the end to what the net takes (frames, or samples, a multiple of
``2**layers``); the loss is computed on the padded whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pamflow.models.dpam import waveform_batch
from pamflow.models.unet import SpectralUNet, TimeUNet

#: the paper's patches: 128 frames of the spectral net's STFT, the time net's window
SPECTRAL_PATCH = 66048
TIME_PATCH = 16384


@dataclass(frozen=True)
class CodecNetConfig:
    """A codec network: its kind, sizes and loss weights. Defaults: the spectral net of
    Table 1 (:meth:`time` gives the time-domain column); the two additions of
    :mod:`pamflow.models.unet` (``residual``, ``frequency_channel``) are on."""

    kind: Literal["spectral", "time"] = field(
        default="spectral",
        metadata={"description": "spectral: U-Net on the magnitude STFT; time: on the waveform"},
    )
    sample_rate: int = field(
        default=16000, metadata={"description": "Hz of the model's input (16 kHz as the paper)"}
    )
    layers: int = field(
        default=5, metadata={"description": "encoder layers (as many decoder layers)"}
    )
    filters: int = field(default=32, metadata={"description": "channels of the first layer"})
    growth: int = field(
        default=2,
        metadata={"description": "channel factor from one layer to the next (1: constant)"},
    )
    kernel: int = field(
        default=5, metadata={"description": "encoder kernel size (odd; 5x5 for spectral)"}
    )
    up_kernel: int = field(default=5, metadata={"description": "decoder kernel size (odd)"})
    batch_norm: bool = field(default=True, metadata={"description": "batch norm after layers"})
    dropout: float = field(
        default=0.5, metadata={"description": "drop probability on the first decoder layers"}
    )
    dropout_layers: int = field(
        default=3, metadata={"description": "how many decoder layers (from the bottom) drop"}
    )
    n_fft: int = field(default=1024, metadata={"description": "spectral: STFT points"})
    hop: int = field(default=512, metadata={"description": "spectral: STFT hop in samples"})
    floor_db: float = field(
        default=-100.0,
        metadata={"description": "spectral: the level (dB re full scale) the scale's 0 stands for"},
    )
    ceiling_db: float = field(
        default=10.0, metadata={"description": "spectral: the level the scale's 1 stands for"}
    )
    frequency_channel: bool = field(
        default=True,
        metadata={"description": "spectral: a second input channel holding each bin's frequency"},
    )
    residual: bool = field(
        default=True,
        metadata={"description": "add the input to the last layer (an untrained net is identity)"},
    )
    time_weight: float = field(
        default=1.0, metadata={"description": "loss: weight of the waveforms' L1 (eq. 3)"}
    )
    prediction_weight: float = field(
        default=1.0, metadata={"description": "loss: weight of the predictions' L1"}
    )
    feature_weight: float = field(
        default=1.0, metadata={"description": "loss: weight of the activations' L1 (features)"}
    )
    layer_weights: tuple[float, ...] = field(
        default=(),
        metadata={"description": "loss: one weight per hidden layer (empty: 1/M each)"},
    )

    @classmethod
    def time(cls, **overrides: Any) -> CodecNetConfig:
        """Table 1's time-domain net: 8 layers of 32 filters, kernels 15 down and 9 up, no
        batch norm or dropout; the loss of eq. 4 (no waveform term)."""
        kw: dict[str, Any] = dict(
            kind="time",
            layers=8,
            filters=32,
            growth=1,
            kernel=15,
            up_kernel=9,
            batch_norm=False,
            dropout=0.0,
            time_weight=0.0,
        )
        return cls(**{**kw, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> CodecNetConfig:
        """A few-thousand-parameter spectral net on a 256-point STFT: tests, smoke runs."""
        kw: dict[str, Any] = dict(layers=3, filters=4, n_fft=256, hop=128)
        return cls(**{**kw, **overrides})

    @property
    def bins(self) -> int:
        """Frequency bins the spectral net sees (the Nyquist bin dropped)."""
        return self.n_fft // 2

    @property
    def num_features(self) -> int:
        """Hidden layers whose activations the feature loss compares."""
        return 2 * self.layers - 1 if self.kind == "spectral" else 2 * self.layers

    def __post_init__(self) -> None:
        checks = {
            "kind": self.kind in ("spectral", "time"),
            "sample_rate": self.sample_rate > 0,
            "layers": self.layers >= 1,
            "filters": self.filters >= 1,
            "growth": self.growth >= 1,
            "kernel": self.kernel >= 1 and self.kernel % 2 == 1,
            "up_kernel": self.up_kernel >= 1 and self.up_kernel % 2 == 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "dropout_layers": self.dropout_layers >= 0,
            "n_fft": self.n_fft >= 4 and self.n_fft % 2 == 0,
            "hop": 1 <= self.hop <= self.n_fft,
            "ceiling_db": self.ceiling_db > self.floor_db,
            "layer_weights": len(self.layer_weights) in (0, self.num_features),
        }
        if self.kind == "spectral" and self.bins % 2**self.layers:
            checks["layers"] = False  # the bins must halve `layers` times
        bad = {k: getattr(self, k) for k, ok in checks.items() if not ok}
        if bad:
            raise ValueError(
                f"CodecNetConfig: invalid value(s) {bad} (layer_weights: none or "
                f"{self.num_features} for {self.layers} {self.kind} layers; spectral: "
                f"n_fft/2 = {self.bins} bins must be a multiple of 2**layers)"
            )


def normalised_magnitude(x: Tensor, cfg: CodecNetConfig, window: Tensor) -> Tensor:
    """The magnitude STFT of waveforms ``x`` ``[B, T]`` on the [0, 1] scale of the module
    docstring: ``[B, bins, frames]``, frames ``1 + (T - n_fft) // hop`` (no centring; ``T``
    shorter than ``n_fft`` is zero-padded to it)."""
    if x.shape[-1] < cfg.n_fft:
        x = F.pad(x, (0, cfg.n_fft - x.shape[-1]))
    spec = torch.stft(x, cfg.n_fft, cfg.hop, window=window, center=False, return_complex=True)[
        :, : cfg.bins
    ]
    ref = float(window.sum()) / 2.0
    power = (spec.real**2 + spec.imag**2) / ref**2
    level = 10.0 * torch.log10(power + 10.0 ** (cfg.floor_db / 10.0))
    return ((level - cfg.floor_db) / (cfg.ceiling_db - cfg.floor_db)).clamp(max=1.0)


def level_db(s: Tensor, cfg: CodecNetConfig) -> Tensor:
    """Normalised magnitudes back to ``level_db`` (dB re full scale, >= ``floor_db``)."""
    return cfg.floor_db + s * (cfg.ceiling_db - cfg.floor_db)


def frames_of(samples: int, cfg: CodecNetConfig) -> int:
    """STFT frames of a clip of ``samples`` (at least one)."""
    return 1 + max(0, samples - cfg.n_fft) // cfg.hop


class CodecNet(nn.Module):
    """The codec network of ``config.kind`` (see the module docstring).

    - :meth:`spectrogram`: the normalised magnitude of waveforms (the spectral net's input).
    - :meth:`predict`: the codec's approximation of waveforms ``[B, T]``: normalised
      magnitudes ``[B, bins, frames]`` (spectral) or a waveform ``[B, T]`` (time).
    - :meth:`predicted_spectrogram`: the prediction as normalised magnitudes, either kind.
    - :meth:`distance` (= ``forward``): the paper's loss, eq. 3 or eq. 4, ``[B]``.
    """

    window: Tensor

    def __init__(self, config: CodecNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or CodecNetConfig()
        common: dict[str, Any] = dict(
            layers=cfg.layers,
            filters=cfg.filters,
            growth=cfg.growth,
            kernel=cfg.kernel,
            up_kernel=cfg.up_kernel,
            batch_norm=cfg.batch_norm,
            dropout=cfg.dropout,
            dropout_layers=cfg.dropout_layers,
            residual=cfg.residual,
        )
        self.net: nn.Module = (
            SpectralUNet(frequency_channel=cfg.frequency_channel, **common)
            if cfg.kind == "spectral"
            else TimeUNet(**common)
        )
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    # -- the codec ----------------------------------------------------------------------
    def spectrogram(self, x: Tensor) -> Tensor:
        """Normalised magnitudes ``[B, bins, frames]`` of waveforms ``[B, T]``."""
        x = waveform_batch(x, "x")[:, 0]
        return normalised_magnitude(x, self.config, self.window)

    def padded(self, x: Tensor) -> Tensor:
        """Waveforms ``[B, T]`` zero-padded at the end to a length the net takes: frames
        (spectral) or samples (time) a multiple of ``2**layers``."""
        cfg, m = self.config, 2**self.config.layers
        t = x.shape[-1]
        if cfg.kind == "spectral":
            frames = math.ceil(frames_of(t, cfg) / m) * m
            want = cfg.n_fft + (frames - 1) * cfg.hop
        else:
            want = math.ceil(t / m) * m
        return F.pad(x, (0, want - t)) if want > t else x

    def run(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The net on waveforms ``[B, T]`` (padded): ``(prediction, activations)``, the
        prediction ``[B, bins, frames]`` or ``[B, T']`` on the padded length."""
        x = self.padded(waveform_batch(x, "x")[:, 0])
        if self.config.kind == "spectral":
            out, acts = self.net(normalised_magnitude(x, self.config, self.window)[:, None])
        else:
            out, acts = self.net(x[:, None])
        return out[:, 0], acts

    def predict(self, x: Tensor) -> Tensor:
        """The codec's approximation of ``x`` ``[B, T]``, cut to ``x``'s frames or samples."""
        out, _ = self.run(x)
        t = x.shape[-1]
        return (
            out[..., : frames_of(t, self.config)]
            if self.config.kind == "spectral"
            else out[..., :t]
        )

    def predicted_spectrogram(self, x: Tensor) -> Tensor:
        """The prediction for ``x`` as normalised magnitudes ``[B, bins, frames]``."""
        pred = self.predict(x)
        return pred if self.config.kind == "spectral" else self.spectrogram(pred)

    # -- the loss -----------------------------------------------------------------------
    def layer_weights(self) -> list[float]:
        """``w_m`` of the feature loss, one per hidden layer."""
        cfg = self.config
        return list(cfg.layer_weights) or [1.0 / cfg.num_features] * cfg.num_features

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        """The paper's loss between waveforms ``x`` and ``y`` ``[B, T]`` (eq. 3 or 4), ``[B]``."""
        x, y = waveform_batch(x, "x")[:, 0], waveform_batch(y, "y")[:, 0]
        if x.shape != y.shape:
            raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must have one shape")
        cfg = self.config

        def l1(a: Tensor, b: Tensor) -> Tensor:
            return (a - b).abs().flatten(1).mean(1)

        (px, fx), (py, fy) = self.run(x), self.run(y)
        d = cfg.prediction_weight * l1(px, py)
        if cfg.time_weight:
            d = d + cfg.time_weight * l1(x, y)
        if cfg.feature_weight:
            for w, a, b in zip(self.layer_weights(), fx, fy, strict=True):
                d = d + cfg.feature_weight * w * l1(a, b)
        return d

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """:meth:`distance`."""
        return self.distance(x, y)


__all__ = [
    "SPECTRAL_PATCH",
    "TIME_PATCH",
    "CodecNet",
    "CodecNetConfig",
    "frames_of",
    "level_db",
    "normalised_magnitude",
]
