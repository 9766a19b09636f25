"""The two U-Nets of the codec-approximation paper (section 4, Table 1, Figure 1).

Both are encoder/decoder stacks with skip connections between the layers of one
resolution; :class:`pamflow.models.codecnet.CodecNet` wraps them as a codec and as a loss.

- :class:`SpectralUNet` (section 4.1, after Jansson et al.'s singing-voice U-Net): input a
  normalised magnitude spectrogram ``[B, 1, F, T]`` (F bins by T frames, both multiples of
  ``2**layers``). Each of ``layers`` encoder layers is a 2-D convolution of stride 2 (kernel
  ``kernel``), batch norm and ReLU; each decoder layer a transposed convolution of stride 2
  (kernel ``up_kernel``), batch norm and ReLU, dropout on the first ``dropout_layers``,
  its output concatenated with the encoder's of the same resolution. The last decoder
  layer has one channel and a sigmoid: the prediction is on the same [0, 1] scale as the
  input. Encoder layer ``i`` has ``filters * growth**i`` channels (32 to 512 with the
  defaults, as in Jansson et al.; Table 1's F = 32 is the first layer's).
- :class:`TimeUNet` (section 4.2, close to Wave-U-Net): input a waveform ``[B, 1, T]``
  (``T`` a multiple of ``2**layers``). Each encoder layer is a 1-D convolution of stride 1
  (kernel ``kernel``) and ReLU, then decimation by 2; each decoder layer a transposed 1-D
  convolution of stride 2 (kernel ``up_kernel``) and ReLU, concatenated with the encoder
  layer of its resolution; a 1x1 convolution and tanh give the waveform. Table 1's
  "F = 32" is read as 32 filters in every layer (``growth`` 1).

Two additions, both switchable: ``residual`` adds the input, taken through the inverse of
the output activation (logit for the sigmoid, atanh for tanh), to the last layer's output,
which starts at zero: an untrained net is the identity, and training learns what the codec
takes away (the MP3 of a clip is mostly the clip). ``frequency_channel`` (spectral) gives
the first layer a second input channel holding each bin's frequency (0 to 1): a
convolution cannot tell where in the spectrum it is, and the codec's low-pass sits at a
fixed frequency. Without both, the nets are the paper's as written.

Both return ``(prediction, activations)``: the hidden layers' outputs in order (encoder,
then decoder), the ``phi_m`` of the paper's feature loss (eqs. 3 and 4).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: inputs are kept this far inside the output activation's range before its inverse
EDGE = 1e-4


def channels(layers: int, filters: int, growth: int) -> list[int]:
    """The channels of each encoder layer: ``filters * growth**i``."""
    return [filters * growth**i for i in range(layers)]


class SpectralUNet(nn.Module):
    """2-D U-Net over ``[B, 1, F, T]`` spectrograms on a [0, 1] scale; see the module."""

    def __init__(
        self,
        *,
        layers: int,
        filters: int,
        growth: int,
        kernel: int,
        up_kernel: int,
        batch_norm: bool,
        dropout: float,
        dropout_layers: int,
        frequency_channel: bool,
        residual: bool,
    ) -> None:
        super().__init__()
        ch = channels(layers, filters, growth)
        self.layers, self.residual, self.frequency_channel = layers, residual, frequency_channel
        ins = [2 if frequency_channel else 1, *ch[:-1]]
        self.down = nn.ModuleList(
            nn.Conv2d(a, b, kernel, stride=2, padding=kernel // 2)
            for a, b in zip(ins, ch, strict=True)
        )
        self.down_norm = nn.ModuleList(
            nn.BatchNorm2d(c) if batch_norm else nn.Identity() for c in ch
        )
        # decoder step j makes the resolution of encoder level L-1-j (the input's, last)
        up_in = [ch[-1]] + [2 * ch[layers - 1 - j] for j in range(1, layers)]
        up_out = [ch[layers - 2 - j] for j in range(layers - 1)] + [1]
        ups = [
            nn.ConvTranspose2d(a, b, up_kernel, stride=2, padding=up_kernel // 2, output_padding=1)
            for a, b in zip(up_in, up_out, strict=True)
        ]
        if residual:  # the untrained net is the identity
            for p in ups[-1].parameters():
                nn.init.zeros_(p)
        self.up = nn.ModuleList(ups)
        self.up_norm = nn.ModuleList(
            nn.BatchNorm2d(c) if batch_norm else nn.Identity() for c in up_out[:-1]
        )
        self.drop = nn.ModuleList(
            nn.Dropout(dropout if j < dropout_layers else 0.0) for j in range(layers - 1)
        )

    def forward(self, s: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``s`` ``[B, 1, F, T]`` in [0, 1] -> (prediction ``[B, 1, F, T]``, activations)."""
        h = s
        if self.frequency_channel:
            f = torch.linspace(0.0, 1.0, s.shape[2], device=s.device, dtype=s.dtype)
            h = torch.cat([s, f.view(1, 1, -1, 1).expand_as(s)], dim=1)
        skips: list[Tensor] = []
        for conv, norm in zip(self.down, self.down_norm, strict=True):
            h = F.relu(norm(conv(h)))
            skips.append(h)
        acts = list(skips)
        for j, (up, norm, drop) in enumerate(
            zip(self.up[:-1], self.up_norm, self.drop, strict=True)
        ):
            h = drop(F.relu(norm(up(h))))
            acts.append(h)
            h = torch.cat([h, skips[self.layers - 2 - j]], dim=1)
        z = self.up[-1](h)
        if self.residual:
            z = z + torch.logit(s.clamp(EDGE, 1.0 - EDGE))
        return torch.sigmoid(z), acts


class TimeUNet(nn.Module):
    """1-D U-Net over ``[B, 1, T]`` waveforms; see the module."""

    def __init__(
        self,
        *,
        layers: int,
        filters: int,
        growth: int,
        kernel: int,
        up_kernel: int,
        batch_norm: bool,
        dropout: float,
        dropout_layers: int,
        residual: bool,
    ) -> None:
        super().__init__()
        ch = channels(layers, filters, growth)
        self.layers, self.residual = layers, residual
        self.down = nn.ModuleList(
            nn.Conv1d(a, b, kernel, padding=kernel // 2)
            for a, b in zip([1, *ch[:-1]], ch, strict=True)
        )
        self.down_norm = nn.ModuleList(
            nn.BatchNorm1d(c) if batch_norm else nn.Identity() for c in ch
        )
        # decoder step j makes level i = L-1-j: input the level below (concatenated with
        # its skip, but for the bottom), output ch[i]
        up_in = [ch[-1]] + [2 * ch[layers - j] for j in range(1, layers)]
        up_out = [ch[layers - 1 - j] for j in range(layers)]
        self.up = nn.ModuleList(
            nn.ConvTranspose1d(a, b, up_kernel, stride=2, padding=up_kernel // 2, output_padding=1)
            for a, b in zip(up_in, up_out, strict=True)
        )
        self.up_norm = nn.ModuleList(
            nn.BatchNorm1d(c) if batch_norm else nn.Identity() for c in up_out
        )
        self.drop = nn.ModuleList(
            nn.Dropout(dropout if j < dropout_layers else 0.0) for j in range(layers)
        )
        self.out = nn.Conv1d(2 * ch[0], 1, 1, bias=False)
        if residual:
            nn.init.zeros_(self.out.weight)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x`` ``[B, 1, T]`` -> (waveform ``[B, 1, T]`` in (-1, 1), activations)."""
        h = x
        skips: list[Tensor] = []
        for conv, norm in zip(self.down, self.down_norm, strict=True):
            a = F.relu(norm(conv(h)))
            skips.append(a)
            h = a[..., ::2]
        acts = list(skips)
        for j, (up, norm, drop) in enumerate(zip(self.up, self.up_norm, self.drop, strict=True)):
            u = drop(F.relu(norm(up(h))))
            acts.append(u)
            h = torch.cat([u, skips[self.layers - 1 - j]], dim=1)
        z = self.out(h)
        if self.residual:
            z = z + torch.atanh(x.clamp(-1.0 + EDGE, 1.0 - EDGE))
        return torch.tanh(z), acts
