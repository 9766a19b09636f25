"""CDPAM's encoder trained in bounded memory: what :class:`pamflow.models.cdpam.CDPAMEncoder`
runs when its ``checkpointing`` is on and it trains.

Where the memory goes. Every encoder layer's output is as large as 64 channels at the input
rate (the channels double as the time axis halves), the fourth of each block twice that
before it is decimated. Autograd keeps three such tensors a layer (the convolution's input,
the batch norm's input and the LeakyReLU's): about 0.8 GiB a waveform of 2.5 s at 22,050
Hz, 26 GiB for a contrastive batch of 16 pairs (32 waveforms).

What this module keeps instead, with the same numbers (activation checkpointing):

- the encoder runs as segments of :data:`BLOCKS` blocks (a block: the layers up to a
  decimation), each one :class:`_Segment`, an autograd function that keeps only its input.
  Its backward pass works back from the segment's last block and each block's last layer:
  it computes the block's input again from the segment's, the layer's input from the
  block's (without a graph), then runs the layer again and backpropagates through it;
- a layer runs a group of its output channels at a time (:data:`GROUPS` groups), forward
  and backward, so no full-rate tensor of all its channels is ever held. Batch norm
  normalises each channel by its own statistics, so a group's are exactly those of the
  whole layer;
- batch norm's running statistics move once a step, in the forward pass, as the module's
  would; the runs of the backward pass update nothing.

Outputs are those of the plain forward pass: bit for bit where the CPU's convolution
kernels sum a channel group as they sum the whole layer (an AVX-512 machine), to float32
rounding elsewhere (2.4e-7 relative on an AVX2 one); gradients agree to float rounding (a
layer's input gradient is summed over its channel groups). ``tests/models/test_lean.py``
checks both, in float64 (loss to 1e-16, gradients to 6e-14). A layer runs four times on
average instead of once: a step costs about twice the plain one. Full size, a contrastive
batch of 16 pairs of 2.5 s on the CPU: about 5 GiB peak instead of about 27
(benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: output-channel groups a layer runs in
GROUPS = 4
#: blocks a segment holds (the backward pass keeps only a segment's input)
BLOCKS = 2


class Encoder(Protocol):
    """What this module reads of a :class:`pamflow.models.cdpam.CDPAMEncoder`."""

    config: Any
    convs: nn.ModuleList
    norms: nn.ModuleList


@dataclass(frozen=True)
class _Layer:
    """What running one layer needs besides its four parameters."""

    padding: int
    slope: float
    step: int  # decimation after the layer (1: none)
    bn: nn.BatchNorm1d


def plain_bytes(config: Any, samples: int) -> int:
    """Bytes autograd keeps of one waveform of ``samples`` through the plain forward pass of
    an encoder of ``config`` that trains: three tensors a layer (the convolution's input,
    the batch norm's and the LeakyReLU's). Full size, 2.5 s at 22,050 Hz: 0.79 GiB (0.81
    measured)."""
    total, n = 0, len(config.channels)
    for i, channels in enumerate(config.channels):
        total += 3 * 4 * channels * samples
        if (i + 1) % config.decimate_every == 0 and i < n - 1:
            samples = (samples + 1) // 2
    return total


def usable(encoder: Encoder) -> bool:
    """Whether the lean forward applies: every batch norm normalises by the batch (training
    mode, running statistics tracked), as the plain forward does when the encoder trains."""
    return all(bn.training and bn.track_running_stats for bn in encoder.norms)


def encode(encoder: Encoder, h: Tensor) -> Tensor:
    """The embedding ``[B, C]`` of ``h`` ``[B, 1, T]`` (the last layer's time mean), keeping
    only each segment's input for the backward pass."""
    cfg, n = encoder.config, len(encoder.convs)
    blocks: list[tuple[_Layer, ...]] = []
    layers: list[_Layer] = []
    params: list[Tensor] = []
    for i, (conv, bn) in enumerate(zip(encoder.convs, encoder.norms, strict=True)):
        assert isinstance(conv, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d)
        assert conv.bias is not None and bn.affine
        step = 2 if (i + 1) % cfg.decimate_every == 0 and i < n - 1 else 1
        layers.append(_Layer(int(conv.padding[0]), cfg.leaky_slope, step, bn))
        params += [conv.weight, conv.bias, bn.weight, bn.bias]
        if step > 1 or i == n - 1:  # a block ends here
            blocks.append(tuple(layers))
            layers = []
        if blocks and (len(blocks) == BLOCKS or i == n - 1):  # and a segment
            h = _Segment.apply(h, tuple(blocks), i == n - 1, *params)
            blocks, params = [], []
    return h


def _groups(channels: int) -> list[slice]:
    size = -(-channels // GROUPS)
    return [slice(c, min(c + size, channels)) for c in range(0, channels, size)]


def _run(h: Tensor, p: list[Tensor], layer: _Layer, sl: slice, update: bool) -> Tensor:
    """Convolution, batch norm (batch statistics) and LeakyReLU of the output channels
    ``sl`` (``p``: their convolution weight and bias, batch-norm weight and bias), then the
    decimation; with ``update`` the running statistics of those channels move as the
    module's would (its ``num_batches_tracked`` is counted by the caller)."""
    bn = layer.bn
    rm, rv = bn.running_mean, bn.running_var
    assert rm is not None and rv is not None
    if update:
        momentum = bn.momentum
        if momentum is None:  # a cumulative average
            momentum = 1.0 / float(bn.num_batches_tracked)  # type: ignore[arg-type]
        stats = rm[sl], rv[sl]  # views: batch_norm moves the buffers in place
    else:
        momentum, stats = 0.0, (rm[sl].clone(), rv[sl].clone())
    z = F.conv1d(h, p[0], p[1], padding=layer.padding)
    z = F.batch_norm(z, stats[0], stats[1], p[2], p[3], True, momentum, bn.eps)
    z = F.leaky_relu(z, layer.slope, inplace=True)
    return z[:, :, :: layer.step] if layer.step > 1 else z


def _forward(h: Tensor, p: list[Tensor], layer: _Layer, update: bool) -> Tensor:
    """One layer, all its channels (no graph)."""
    if update:
        layer.bn.num_batches_tracked.add_(1)  # type: ignore[union-attr]
    parts = [
        _run(h, [t[sl] for t in p], layer, sl, update).contiguous() for sl in _groups(len(p[2]))
    ]
    return torch.cat(parts, dim=1)


def _backward(
    x: Tensor, p: list[Tensor], layer: _Layer, grad: Callable[[slice], Tensor], needs: list[bool]
) -> tuple[Tensor | None, list[Tensor | None]]:
    """Gradients of one layer's input ``x`` (when ``needs[0]``) and of its parameters (those
    ``needs[1:]`` asks for), given ``grad(channels)``, its output's gradient; a channel
    group at a time."""
    x_grad: Tensor | None = None
    grads: list[Tensor | None] = [torch.zeros_like(t) if need else None
                                  for t, need in zip(p, needs[1:], strict=True)]  # fmt: skip
    with torch.enable_grad():
        x = x.detach().requires_grad_(needs[0])
        for sl in _groups(len(p[2])):
            group = [
                t[sl].detach().requires_grad_(need) for t, need in zip(p, needs[1:], strict=True)
            ]
            out = _run(x, group, layer, sl, update=False)
            wanted = [t for t in (x, *group) if t.requires_grad]
            got = iter(torch.autograd.grad(out, wanted, grad(sl)))
            if needs[0]:
                g = next(got)
                x_grad = g if x_grad is None else x_grad.add_(g)
            for k, t in enumerate(group):
                if t.requires_grad:
                    grads[k][sl] = next(got)  # type: ignore[index]
    return x_grad, grads


class _Segment(torch.autograd.Function):
    """Blocks of layers that keep only their input for the backward pass."""

    @staticmethod
    def forward(
        ctx: Any, h: Tensor, blocks: tuple[tuple[_Layer, ...], ...], pool: bool, *params: Tensor
    ) -> Tensor:
        """``pool``: the last segment returns the time mean of its output, so that the
        backward pass never holds the mean's gradient spread over time."""
        ctx.save_for_backward(h, *params)
        ctx.blocks, ctx.pool = blocks, pool
        layers = [layer for block in blocks for layer in block]
        out = _through(h, layers, params, 0, len(layers), update=True)
        return out.mean(dim=2) if pool else out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        h, *params = ctx.saved_tensors
        blocks: tuple[tuple[_Layer, ...], ...] = ctx.blocks
        layers = [layer for block in blocks for layer in block]
        needs = list(ctx.needs_input_grad)
        out: list[Tensor | None] = [None] * len(params)
        g: Tensor | None = grad
        end = len(layers)
        for block in reversed(blocks):  # the block's input from the segment's, then
            start = end - len(block)  # each layer's input from the block's
            x_block = _through(h, layers, params, 0, start, update=False)
            for j in reversed(range(start, end)):
                x = _through(x_block, layers, params, start, j, update=False)
                need = [needs[0] if j == 0 else True, *needs[3 + 4 * j : 7 + 4 * j]]
                by = _grad(g, ctx.pool and j == len(layers) - 1, x)
                g, out[4 * j : 4 * j + 4] = _backward(
                    x, params[4 * j : 4 * j + 4], layers[j], by, need
                )
                del x
            del x_block
            end = start
        return (g, None, None, *out)


def _grad(g: Tensor | None, pooled: bool, x: Tensor) -> Callable[[slice], Tensor]:
    """A layer's output gradient by channels: ``g`` itself, or for the pooled last layer
    (``g`` of the time mean) spread over time as autograd's mean would, a group at a time."""
    assert g is not None
    if not pooled:
        return lambda sl: g[:, sl]
    frames = x.shape[2]  # the last layer does not decimate
    return lambda sl: g[:, sl, None].expand(-1, -1, frames).div(frames)


def _through(
    h: Tensor, layers: list[_Layer], params: Any, start: int, stop: int, update: bool
) -> Tensor:
    """``h`` through ``layers[start:stop]`` (no graph)."""
    with torch.no_grad():
        for k in range(start, stop):
            h = _forward(h, list(params[4 * k : 4 * k + 4]), layers[k], update)
    return h
