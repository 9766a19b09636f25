"""The encoder network of the codec-approximation paper (section 5, Table 2): a small
waveform autoencoder, the test bed on which the four losses of section 6 are compared.

``layers`` layers in all, half coding, half decoding, no skip connections: each coding
layer is a 1-D convolution of stride 1 (kernel ``kernel``) and ReLU followed by
decimation by 2; each decoding layer upsamples by 2 (nearest neighbour) and applies a
convolution of stride 1 (Table 2: "kernel 9, stride 1" for both). The last coding layer
has as many channels as put ``bottleneck`` of the input's variables in the bottleneck
(50 %: 8 channels at 1/16 of the rate for 8 layers); the others have ``filters``. The last
decoding layer gives one channel through tanh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn
from torch.nn import functional as F


@dataclass(frozen=True)
class AutoencoderConfig:
    """Table 2's encoder network: 8 layers, 12 filters, kernels of 9, a 50 % bottleneck."""

    layers: int = field(default=8, metadata={"description": "layers, half coding, half decoding"})
    filters: int = field(default=12, metadata={"description": "channels of the hidden layers"})
    kernel: int = field(default=9, metadata={"description": "kernel size (odd), stride 1"})
    bottleneck: float = field(
        default=0.5, metadata={"description": "share of the input's variables kept"}
    )

    @property
    def depth(self) -> int:
        """Coding layers (each halves the rate)."""
        return self.layers // 2

    @property
    def bottleneck_channels(self) -> int:
        """Channels of the last coding layer: ``bottleneck * 2**depth``."""
        return max(1, round(self.bottleneck * 2**self.depth))

    def __post_init__(self) -> None:
        if self.layers < 2 or self.layers % 2:
            raise ValueError(
                f"AutoencoderConfig.layers: need an even number >= 2, got {self.layers}"
            )
        if self.filters < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(
                f"AutoencoderConfig: need filters >= 1 and an odd kernel, got {self.filters}, "
                f"{self.kernel}"
            )
        if not 0.0 < self.bottleneck <= 1.0:
            raise ValueError(f"AutoencoderConfig.bottleneck: need (0, 1], got {self.bottleneck}")


class Autoencoder(nn.Module):
    """Waveforms ``[B, T]`` (``T`` a multiple of ``2**depth``) -> reconstructions ``[B, T]``."""

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or AutoencoderConfig()
        k, c = cfg.kernel, cfg.filters
        code = [c] * (cfg.depth - 1) + [cfg.bottleneck_channels]
        self.code = nn.ModuleList(
            nn.Conv1d(a, b, k, padding=k // 2) for a, b in zip([1, *code[:-1]], code, strict=True)
        )
        dec = [c] * (cfg.depth - 1) + [1]
        self.decode = nn.ModuleList(
            nn.Conv1d(a, b, k, padding=k // 2)
            for a, b in zip([code[-1], *dec[:-1]], dec, strict=True)
        )

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[-1]
        if t % 2**self.config.depth:
            raise ValueError(
                f"Autoencoder: {t} samples is not a multiple of 2**{self.config.depth}"
            )
        h = x.reshape(x.shape[0], 1, t)
        for conv in self.code:
            h = F.relu(conv(h))[..., ::2]
        for i, conv in enumerate(self.decode):
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = h.tanh() if i == len(self.decode) - 1 else F.relu(h)
        return h[:, 0]
