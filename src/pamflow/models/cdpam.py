"""CDPAM: contrastive, multi-dimensional deep perceptual audio similarity.

Architecture (CDPAM paper, sections 3.1-3.2 and Fig. 1; sizes in :class:`CDPAMConfig`):

- :class:`CDPAMEncoder`: 16 Conv1d layers, kernel 15, on the raw waveform; 64 filters at
  first, doubled by every 4th layer (64 x3, 128 x4, 256 x4, 512 x4, 1024 x1), each layer
  followed by batch norm and LeakyReLU(0.1); the time axis is decimated by 2 (every other
  frame) after every 4th layer but the last; global average over time gives a 1024-d
  embedding whose first half is the *acoustic* and second half the *content* embedding.
- A projection head for contrastive pre-training (stage a): 512 -> 512 (batch norm,
  LeakyReLU, dropout 0.1) -> 256, trained with NT-Xent (:func:`pamflow.models.losses.nt_xent`).
- The loss-net (stages b, c): the L2-normalised acoustic embeddings of both inputs go
  through an MLP 512 -> 256 -> 64 -> 16 -> 4 (LeakyReLU between layers); each layer ``l``
  has a learned per-unit weight ``w_l`` (initialised to 1; only ``|w_l|`` matters) and

      d(x, y) = sum_l sum_units |w_l * (phi_l(a_x) - phi_l(a_y))|

  then a JND classifier ``1 -> 16 -> 6 -> 2`` on ``d`` (LeakyReLU, dropout 0.1; class 1 =
  "different"); triplet fine-tuning uses a margin ranking loss on ``d`` (margin 0.1).

Input: mono waveforms ``[B, T]`` or ``[B, 1, T]``, float, nominally in [-1, 1] at
``config.sample_rate`` (22,050 Hz as the released model). With the default config about
26 M parameters. ``d(x, x) == 0`` exactly (both inputs share one batch-norm pass).

:func:`augment` is CDPAM's online augmentation: 0.25 s of silence at the start or the end
and a gain in -20..0 dB, all drawn from an explicit ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pamflow.models import lean
from pamflow.models.dpam import waveform_batch, waveform_pair


def doubling_schedule(first: int = 64, num_layers: int = 16, every: int = 4) -> tuple[int, ...]:
    """Output channels of each layer: ``first``, doubled by layer ``every``, ``2*every``, ...
    (64, 16, 4 -> 64 x3, 128 x4, 256 x4, 512 x4, 1024)."""
    out, c = [], first
    for i in range(num_layers):
        if (i + 1) % every == 0:
            c *= 2
        out.append(c)
    return tuple(out)


@dataclass(frozen=True)
class CDPAMConfig:
    """Sizes of a CDPAM model; defaults follow the paper and reference code (~26 M
    parameters). The embedding size is ``channels[-1]`` (split in two equal halves);
    ``projection_dims`` and ``distance_dims`` start from its half."""

    sample_rate: int = field(
        default=22050,
        metadata={"description": "Hz of the model's input (training and evaluation load at it)"},
    )
    channels: tuple[int, ...] = field(
        default=doubling_schedule(64, 16, 4),
        metadata={
            "description": "output channels of each encoder layer; the last is the embedding "
            "size (even: acoustic and content halves)"
        },
    )
    kernel_size: int = field(default=15, metadata={"description": "conv kernel size (odd)"})
    leaky_slope: float = field(
        default=0.1, metadata={"description": "LeakyReLU negative slope of the encoder"}
    )
    decimate_every: int = field(
        default=4,
        metadata={
            "description": "the time axis is halved after every this many layers (not after "
            "the last)"
        },
    )
    projection_dims: tuple[int, ...] = field(
        default=(512, 256),
        metadata={"description": "projection head sizes (stage contrastive), after the half"},
    )
    projection_dropout: float = field(
        default=0.1, metadata={"description": "dropout in the projection head"}
    )
    distance_dims: tuple[int, ...] = field(
        default=(256, 64, 16, 4),
        metadata={
            "description": "loss-net MLP sizes, after the acoustic half; every layer's units "
            "are weighted in the distance"
        },
    )
    distance_slope: float = field(
        default=0.01, metadata={"description": "LeakyReLU slope between loss-net layers"}
    )
    normalise: bool = field(
        default=True,
        metadata={"description": "L2-normalise the acoustic embeddings before the loss-net"},
    )
    classifier_hidden: tuple[int, ...] = field(
        default=(16, 6),
        metadata={"description": "hidden sizes of the JND classifier: d -> ... -> 2"},
    )
    classifier_dropout: float = field(
        default=0.1, metadata={"description": "dropout in the JND classifier"}
    )

    @classmethod
    def tiny(cls, **overrides: Any) -> CDPAMConfig:
        """A few-thousand-parameter model for CPU tests and smoke runs (8 layers)."""
        kw: dict[str, Any] = dict(
            channels=doubling_schedule(4, 8, 4),
            kernel_size=7,
            projection_dims=(8, 8),
            distance_dims=(8, 4, 2),
        )
        kw.update(overrides)
        return cls(**kw)

    @property
    def embedding_dim(self) -> int:
        return self.channels[-1]

    def __post_init__(self) -> None:
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"CDPAMConfig.channels: need positive sizes, got {self.channels}")
        if self.channels[-1] % 2:
            raise ValueError(
                f"CDPAMConfig.channels: the last size {self.channels[-1]} must be "
                "even (split into acoustic and content halves)"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"CDPAMConfig.kernel_size: need an odd size, got {self.kernel_size}")
        if not self.distance_dims or not self.projection_dims:
            raise ValueError("CDPAMConfig: distance_dims and projection_dims must not be empty")


class CDPAMEncoder(nn.Module):
    """Waveform ``[B, T]``/``[B, 1, T]`` -> embedding ``[B, channels[-1]]`` (time mean)."""

    def __init__(self, config: CDPAMConfig | None = None):
        super().__init__()
        self.config = cfg = config or CDPAMConfig()
        c_in = [1, *cfg.channels[:-1]]
        k = cfg.kernel_size
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, k, padding=k // 2) for a, b in zip(c_in, cfg.channels, strict=True)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) for c in cfg.channels)
        #: when training, run :func:`pamflow.models.lean.encode`: the same outputs and
        #: gradients in a fraction of the memory, for about twice the time (a setting of the
        #: training run, not of the model: not in the state dict)
        self.checkpointing = False

    def forward(self, x: Tensor) -> Tensor:
        h = waveform_batch(x, "x")
        if self.checkpointing and self._trains(h) and lean.usable(self):
            return lean.encode(self, h)
        cfg, n = self.config, len(self.convs)
        for i, (conv, bn) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = F.leaky_relu(bn(conv(h)), cfg.leaky_slope)
            if (i + 1) % cfg.decimate_every == 0 and i < n - 1:
                h = h[:, :, ::2]
        return h.mean(dim=2)

    def _trains(self, h: Tensor) -> bool:
        """Whether this forward pass records a graph to differentiate."""
        return torch.is_grad_enabled() and (
            h.requires_grad or any(p.requires_grad for p in self.parameters())
        )


class WeightedMLPDistance(nn.Module):
    """``d(a, b) = sum_l sum_units |w_l * (phi_l(a) - phi_l(b))|`` over the MLP's layers."""

    def __init__(self, in_dim: int, dims: tuple[int, ...], slope: float):
        super().__init__()
        sizes = [in_dim, *dims]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.weights = nn.ParameterList(nn.Parameter(torch.ones(d)) for d in dims)
        self.slope = slope

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        h = torch.cat([a, b])
        d = h.new_zeros(a.shape[0])
        last = len(self.layers) - 1
        for i, (layer, w) in enumerate(zip(self.layers, self.weights, strict=True)):
            h = layer(h)
            if i < last:
                h = F.leaky_relu(h, self.slope)
            ha, hb = h.chunk(2)
            d = d + (w * (ha - hb)).abs().sum(dim=1)
        return d


def _mlp(dims: list[int], dropout: float, batch_norm: bool) -> list[nn.Module]:
    """Linear layers with [BN,] LeakyReLU and dropout between them (none after the last)."""
    out: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        out.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            out += [nn.BatchNorm1d(b)] if batch_norm else []
            out += [nn.LeakyReLU(), nn.Dropout(dropout)]
    return out


class CDPAM(nn.Module):
    """CDPAM metric: ``forward(x, y)`` -> distance ``[B]``; ``embed``, ``project`` for
    contrastive pre-training; ``classify`` for JND training."""

    def __init__(self, config: CDPAMConfig | None = None):
        super().__init__()
        self.config = cfg = config or CDPAMConfig()
        half = cfg.embedding_dim // 2
        self.encoder = CDPAMEncoder(cfg)
        self.projection = nn.Sequential(
            *_mlp([half, *cfg.projection_dims], cfg.projection_dropout, batch_norm=True)
        )
        self.distance_net = WeightedMLPDistance(half, cfg.distance_dims, cfg.distance_slope)
        self.classifier = nn.Sequential(
            *_mlp([1, *cfg.classifier_hidden, 2], cfg.classifier_dropout, batch_norm=False)
        )

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(acoustic, content)`` embeddings, each ``[B, channels[-1] // 2]``."""
        z = self.encoder(x)
        return z.chunk(2, dim=1)

    def project(self, z: Tensor) -> Tensor:
        """Projection head for NT-Xent: ``[B, channels[-1] // 2]`` -> ``[B, projection_dims[-1]]``
        (apply to the acoustic or the content embedding)."""
        return self.projection(z)

    def distance_from_embeddings(self, a: Tensor, b: Tensor) -> Tensor:
        """Loss-net distance ``[B]`` between two batches of acoustic embeddings."""
        if self.config.normalise:
            a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        return self.distance_net(a, b)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distance ``[B]`` (>= 0) between two waveform batches of one shape."""
        acoustic, _ = self.embed(waveform_pair(x, y))
        a, b = acoustic.chunk(2)
        return self.distance_from_embeddings(a, b)

    distance = forward

    def classify_distance(self, d: Tensor) -> Tensor:
        """JND classifier: distances ``[B]`` -> logits ``[B, 2]`` (class 1 = "different")."""
        return self.classifier(d.unsqueeze(-1))

    def classify(self, x: Tensor, y: Tensor) -> Tensor:
        return self.classify_distance(self(x, y))
