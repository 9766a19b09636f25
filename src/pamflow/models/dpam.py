"""DPAM: a deep perceptual audio metric learned from just-noticeable differences.

Architecture (DPAM paper, sections 2.2 and 3.3; sizes in :class:`DPAMConfig`):

- :class:`DPAMFeatures`, the loss network ``F``: 14 Conv1d layers with kernel 3 on the raw
  waveform, channels 32 (5 layers), 64 (5) and 128 (4), stride 2 with zero padding on all
  but the last layer (each halves the time axis), batch norm, LeakyReLU(0.2) and dropout
  (p = 0.3, i.e. keep 0.7) after every layer. Its output is the list of per-layer
  activations ``F_l(x)`` of shape ``[B, C_l, T_l]``.
- :class:`DPAM`, the metric: one learned weight vector ``w_l`` (one weight a channel) per
  layer and the distance

      D(x, y) = sum_l mean_{c, t} |w_l[c] * (F_l(x) - F_l(y))[c, t]|

  i.e. the paper's sum over layers of ``||w_l ⊙ ΔF_l||_1 / (T_l C_l)``
  (``layer_reduction="mean"`` divides by the number of layers L, as the reference code
  does; the sum gives ``G`` a distance on a scale it can separate from the first steps,
  which matters on short CPU runs). Because only ``|w_l ⊙ ΔF_l|``
  enters, the effective weights are ``|w_l|`` (non-negative); they start at 1, so an untrained
  DPAM is the plain averaged feature distance (the paper's ``pre`` metric).
- A small classifier ``G``: ``sigmoid(D) -> 16 -> 6 -> 2`` with ReLU, trained with
  cross-entropy on JND labels (class 1 = "different").

Training variants (paper section 2.2): ``scratch`` (everything trains: the default),
``lin`` (:meth:`DPAM.freeze_features`: only the weights ``w_l`` and ``G`` train) and ``fin``
(:meth:`DPAM.load_features` from a pre-trained classification model, then train all).

Input: mono waveforms ``[B, T]`` or ``[B, 1, T]``, float, nominally in [-1, 1] at
``config.sample_rate`` (22,050 Hz as in the released models; the model itself does not
resample). ``D(x, x) == 0`` exactly in eval mode; in training mode too when
``shared_dropout`` is on (the default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass(frozen=True)
class DPAMConfig:
    """Sizes of a DPAM model; defaults follow the paper (about 0.24 M parameters).

    ``channels`` has one entry per conv layer; ``stride`` applies to every layer but the
    last. ``dropout`` is the drop probability (the paper's keep probability is 0.7).
    ``shared_dropout``: the two inputs of a pair get the same dropout mask, so dropout
    noise never shows up as a difference between them (independent masks, as two separate
    passes would draw, when False).
    """

    sample_rate: int = field(
        default=22050,
        metadata={"description": "Hz of the model's input (training and evaluation load at it)"},
    )
    channels: tuple[int, ...] = field(
        default=(32,) * 5 + (64,) * 5 + (128,) * 4,
        metadata={"description": "output channels of each conv layer, one entry a layer"},
    )
    kernel_size: int = field(default=3, metadata={"description": "conv kernel size (odd)"})
    stride: int = field(
        default=2, metadata={"description": "stride of every conv layer but the last"}
    )
    leaky_slope: float = field(default=0.2, metadata={"description": "LeakyReLU negative slope"})
    dropout: float = field(
        default=0.3,
        metadata={"description": "drop probability after every layer (0 <= p < 1)"},
    )
    shared_dropout: bool = field(
        default=True,
        metadata={"description": "the two inputs of a pair get one dropout mask"},
    )
    classifier_hidden: tuple[int, ...] = field(
        default=(16, 6),
        metadata={"description": "hidden sizes of the JND classifier G: sigmoid(D) -> ... -> 2"},
    )
    layer_reduction: str = field(
        default="sum",
        metadata={"description": "sum over layers (paper) or mean (reference code)"},
    )

    @classmethod
    def tiny(cls, **overrides: Any) -> DPAMConfig:
        """A few-thousand-parameter model for CPU tests and smoke runs."""
        kw: dict[str, Any] = dict(channels=(4, 4, 8, 8, 8), classifier_hidden=(16, 6))
        kw.update(overrides)
        return cls(**kw)

    def __post_init__(self) -> None:
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"DPAMConfig.channels: need positive sizes, got {self.channels}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"DPAMConfig.kernel_size: need an odd size, got {self.kernel_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"DPAMConfig.dropout: need 0 <= p < 1, got {self.dropout}")
        if self.layer_reduction not in ("sum", "mean"):
            raise ValueError(
                f"DPAMConfig.layer_reduction: 'sum' or 'mean', got {self.layer_reduction!r}"
            )


def waveform_batch(x: Tensor, name: str) -> Tensor:
    """``[B, T]`` or ``[B, 1, T]`` float waveforms as ``[B, 1, T]``; anything else is an error
    naming ``name``."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a float torch.Tensor, got {type(x).__name__}"
            + (f" of {x.dtype}" if isinstance(x, Tensor) else "")
        )
    if x.dim() == 2:
        return x.unsqueeze(1)
    if x.dim() == 3 and x.shape[1] == 1:
        return x
    raise ValueError(
        f"{name}: expected a mono waveform batch [B, T] or [B, 1, T], got shape {tuple(x.shape)}"
    )


def waveform_pair(x: Tensor, y: Tensor) -> Tensor:
    """Check two waveform batches of one shape and stack them as ``[2B, 1, T]``."""
    x, y = waveform_batch(x, "x"), waveform_batch(y, "y")
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must have the same shape [B, 1, T], got {tuple(x.shape)} "
            f"and {tuple(y.shape)} (crop or pad them to one length first)"
        )
    return torch.cat([x, y.to(x.dtype)])


class ConvBlock(nn.Module):
    """Conv1d -> BatchNorm -> LeakyReLU -> dropout (optionally one mask for both halves)."""

    def __init__(self, c_in: int, c_out: int, cfg: DPAMConfig, stride: int):
        super().__init__()
        k = cfg.kernel_size
        self.conv = nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2)
        self.bn = nn.BatchNorm1d(c_out)
        self.slope, self.p = cfg.leaky_slope, cfg.dropout

    def forward(self, x: Tensor, paired: bool = False) -> Tensor:
        h = F.leaky_relu(self.bn(self.conv(x)), self.slope)
        if not self.training or self.p == 0.0:
            return h
        if not paired:
            return F.dropout(h, self.p, training=True)
        half = h.shape[0] // 2
        mask = torch.empty_like(h[:half]).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return h * torch.cat([mask, mask])


class DPAMFeatures(nn.Module):
    """The DPAM conv stack ``F``: waveform ``[B, T]``/``[B, 1, T]`` -> list of the L layer
    activations, ``[B, C_l, T_l]`` with ``T_l = ceil(T / 2**l)`` for stride 2."""

    def __init__(self, config: DPAMConfig | None = None):
        super().__init__()
        cfg = config or DPAMConfig()
        n = len(cfg.channels)
        c_in = [1, *cfg.channels[:-1]]
        self.layers = nn.ModuleList(
            ConvBlock(ci, co, cfg, cfg.stride if i < n - 1 else 1)
            for i, (ci, co) in enumerate(zip(c_in, cfg.channels, strict=True))
        )

    def forward(self, x: Tensor, paired: bool = False) -> list[Tensor]:
        """``paired=True``: ``x`` is ``[x; y]`` stacked on the batch axis, and both halves get
        the same dropout masks."""
        h = waveform_batch(x, "x")
        if paired and h.shape[0] % 2:
            raise ValueError(f"paired features need an even batch, got {h.shape[0]}")
        out = []
        for layer in self.layers:
            h = layer(h, paired)
            out.append(h)
        return out


class DPAM(nn.Module):
    """DPAM metric: ``forward(x, y)`` -> distance ``[B]``; ``classify(x, y)`` -> JND logits
    ``[B, 2]`` (class 1 = "different")."""

    def __init__(self, config: DPAMConfig | None = None):
        super().__init__()
        self.config = cfg = config or DPAMConfig()
        self.features = DPAMFeatures(cfg)
        self.weights = nn.ParameterList(nn.Parameter(torch.ones(c)) for c in cfg.channels)
        dims = [1, *cfg.classifier_hidden]
        mlp: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            mlp += [nn.Linear(a, b), nn.ReLU()]
        self.classifier = nn.Sequential(*mlp, nn.Linear(dims[-1], 2))
        self.features_frozen = False

    def channel_weights(self) -> list[Tensor]:
        """The effective (non-negative) per-channel weights ``|w_l|`` of each layer."""
        return [w.abs() for w in self.weights]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distance ``D(x, y)`` ``[B]`` (>= 0) between two waveform batches of one shape."""
        shared = self.config.shared_dropout
        feats = self.features(waveform_pair(x, y), paired=shared)
        per_layer = []
        for w, f in zip(self.weights, feats, strict=True):
            fx, fy = f.chunk(2)
            per_layer.append((w[:, None] * (fx - fy)).abs().mean(dim=(1, 2)))
        stacked = torch.stack(per_layer)
        return stacked.mean(0) if self.config.layer_reduction == "mean" else stacked.sum(0)

    distance = forward

    def classify_distance(self, d: Tensor) -> Tensor:
        """``G``: distances ``[B]`` -> logits ``[B, 2]`` via ``sigmoid(d) -> MLP``."""
        return self.classifier(torch.sigmoid(d).unsqueeze(-1))

    def classify(self, x: Tensor, y: Tensor) -> Tensor:
        """JND logits ``[B, 2]`` for the pair (class 1 = "different")."""
        return self.classify_distance(self(x, y))

    def freeze_features(self) -> DPAM:
        """The ``lin`` variant: freeze ``F`` (parameters and batch-norm statistics, which stay
        in eval mode even under ``train()``); only ``w_l`` and ``G`` train."""
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.features_frozen = True
        self.features.eval()
        return self

    def load_features(self, state_dict: Mapping[str, Tensor]) -> DPAM:
        """The ``fin`` variant's start: load ``F`` from a pre-trained model's state dict (keys
        of :class:`DPAMFeatures`, optionally prefixed ``features.`` as in a full DPAM)."""
        prefix = "features."
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
        try:
            self.features.load_state_dict(state_dict, strict=True)
        except RuntimeError as e:
            raise ValueError(
                f"load_features: state dict does not fit DPAMFeatures for "
                f"channels={self.config.channels}: {e}"
            ) from e
        return self

    def train(self, mode: bool = True) -> DPAM:
        super().train(mode)
        if self.features_frozen:
            self.features.eval()
        return self
