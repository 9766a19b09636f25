"""Fast Griffin-Lim (Perraudin et al. 2013) with librosa's exact definition, at the FFT floor.

Definition (librosa 0.11 ``griffinlim`` with ``init="random"``, ``momentum``, centred
frames, zero padding, a periodic Hann window, hop ``n_fft // 4`` chosen by the caller):

1. ``angles = S * exp(2j * pi * U)``, ``U = rng.random((bins, frames))`` from the caller's
   generator (the same draws librosa makes, so the start is identical);
2. each iteration: ``x = istft(angles)`` (windowed overlap-add divided by the window's
   sum of squares, trimmed to the clip's length), ``X = stft(x)``,
   ``angles = X - momentum / (1 + momentum) * X_prev``, ``angles *= S / (|angles| + eps)``;
3. the result is ``istft(angles)``.

Two engines compute it. :func:`griffin_lim` (NumPy, one clip) keeps every buffer between
iterations: the window, its normalisation and the trimming mask are computed once, all
frames go through one ``rfft`` and one ``irfft`` a step, overlap-add is ``ceil(n_fft / hop)``
vector additions, and the updates run in place, in float32 by default. :func:`griffin_lim_batch`
(PyTorch) runs many clips of one length at once, on the GPU where there is one, with the
same steps; clips with fewer iterations leave the batch as soon as they are done.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft

if TYPE_CHECKING:
    import torch

#: librosa's default momentum ("fast Griffin-Lim")
MOMENTUM = 0.99


class Plan:
    """What every iteration on clips of ``length`` samples reuses (sizes, window, norms)."""

    def __init__(self, length: int, n_fft: int, hop: int) -> None:
        if length < 1 or n_fft < 2 or not 0 < hop <= n_fft:
            raise ValueError(f"griffin_lim: bad sizes length={length} n_fft={n_fft} hop={hop}")
        self.length, self.n_fft, self.hop = length, n_fft, hop
        self.pad = n_fft // 2
        self.frames = 1 + length // hop  # centred frames of a zero-padded clip
        self.bins = n_fft // 2 + 1
        self.chunks = math.ceil(n_fft / hop)  # hops a frame spans (overlap-add passes)
        # the padded signal: frames * hop + (chunks - 1) * hop covers every frame's end
        self.padded = (self.frames + self.chunks - 1) * hop
        n = np.arange(n_fft)
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)).astype(np.float64)
        wss = self.overlap_add(np.broadcast_to(self.window**2, (self.frames, n_fft)))
        # 1 / (window sum of squares) inside the clip, 0 outside: istft's normalisation and
        # its trimming to ``length``, then stft's zero padding, in one multiplication
        keep = np.zeros(self.padded)
        inside = slice(self.pad, self.pad + length)
        span = wss[inside]
        tiny = np.finfo(np.float64).tiny
        keep[inside] = np.where(span > tiny, 1.0 / np.where(span > tiny, span, 1.0), 1.0)
        self.keep = keep
        self.window.setflags(write=False)  # shared: plans are cached (:func:`plan_for`)
        self.keep.setflags(write=False)

    def overlap_add(self, frames: Any, out: Any = None) -> Any:
        """Sum ``frames`` [..., frames, n_fft] placed ``hop`` apart into [..., padded]."""
        hop, c = self.hop, self.chunks
        lead = frames.shape[:-2]
        width = c * hop
        if width != self.n_fft:  # pad each frame to whole hops
            widths = [(0, 0)] * (frames.ndim - 1) + [(0, width - self.n_fft)]
            frames = np.pad(frames, widths)
        parts = frames.reshape(*lead, self.frames, c, hop)
        if out is None:
            out = np.zeros((*lead, self.frames + c - 1, hop), dtype=frames.dtype)
        else:
            out = out.reshape(*lead, self.frames + c - 1, hop)
            out[...] = 0
        for k in range(c):
            out[..., k : k + self.frames, :] += parts[..., :, k, :]
        return out.reshape(*lead, self.padded)


@functools.lru_cache(maxsize=16)
def plan_for(length: int, n_fft: int, hop: int) -> Plan:
    """The :class:`Plan` of clips of ``length`` samples, made once (a build's clips share
    a few lengths)."""
    return Plan(length, n_fft, hop)


def magnitude(audio: np.ndarray, n_fft: int, hop: int, dtype: Any = np.float32) -> np.ndarray:
    """|STFT| [bins, frames] of ``audio`` as :func:`librosa.stft` frames it (centred, zero
    padding, periodic Hann window), computed in ``dtype``."""
    plan = plan_for(audio.size, n_fft, hop)
    real = np.dtype(dtype)
    padded = np.zeros(plan.padded, dtype=real)
    padded[plan.pad : plan.pad + audio.size] = audio
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][: plan.frames]
    return np.abs(scipy.fft.rfft(view * plan.window.astype(real), axis=-1)).T


def griffin_lim(
    magnitude: np.ndarray,
    iterations: int,
    rng: np.random.Generator,
    *,
    length: int,
    hop: int,
    momentum: float = MOMENTUM,
    dtype: Any = np.float32,
) -> np.ndarray:
    """A waveform of ``length`` samples whose STFT magnitude approaches ``magnitude``.

    ``magnitude`` is [bins, frames] as :func:`librosa.stft` gives it (``n_fft = 2 *
    (bins - 1)``, centred frames, ``hop``); ``rng`` draws the initial phase. Computed in
    ``dtype`` (float32 by default; float64 agrees with librosa to rounding).
    """
    bins, frames = magnitude.shape
    plan = plan_for(length, 2 * (bins - 1), hop)
    if frames != plan.frames:
        raise ValueError(
            f"griffin_lim: {frames} frames for {length} samples, expected {plan.frames}"
        )
    real = np.dtype(dtype)
    cplx = np.result_type(real, np.complex64)
    window = plan.window.astype(real)
    keep = plan.keep.astype(real)
    mag = np.ascontiguousarray(magnitude.T, dtype=real)  # [frames, bins]: frames are rows
    angles = np.ascontiguousarray(np.exp(2j * np.pi * rng.random(size=(bins, frames))).T, cplx)
    angles *= mag
    prev = np.empty_like(angles)
    signal = np.zeros(plan.padded, dtype=real)
    factor = momentum / (1.0 + momentum)
    eps = np.finfo(real).tiny

    def inverse(spec: np.ndarray) -> np.ndarray:
        # overwrite_x: `spec` (the angles) is rewritten before it is read again
        frames_t = scipy.fft.irfft(spec, n=plan.n_fft, axis=-1, overwrite_x=True)
        frames_t = frames_t.astype(real, copy=False)
        frames_t *= window
        out = plan.overlap_add(frames_t, signal)
        out *= keep
        return out

    framed = np.empty((plan.frames, plan.n_fft), dtype=real)
    # every inverse lands in ``signal``: its frames are one view, made once
    view = np.lib.stride_tricks.sliding_window_view(signal, plan.n_fft)[:: plan.hop][: plan.frames]
    for it in range(iterations):
        inverse(angles)
        np.multiply(view, window, out=framed)
        rebuilt = scipy.fft.rfft(framed, axis=-1, overwrite_x=True).astype(cplx, copy=False)
        _update(rebuilt, prev if it else None, mag, factor, eps, angles)
        prev = rebuilt
    out = inverse(angles)
    return np.array(out[plan.pad : plan.pad + length])


def _update(
    rebuilt: np.ndarray,
    prev: np.ndarray | None,
    mag: np.ndarray,
    factor: float,
    eps: float,
    out: np.ndarray,
) -> None:
    """``out = z * mag / (|z| + eps)`` with ``z = rebuilt - factor * prev`` (no ``prev``:
    ``z = rebuilt``), in one pass (numba; NumPy would take six). The complex arrays are
    read as (real, imaginary) pairs of floats: the same operations in the same order as
    complex arithmetic (bit for bit, tested), compiled to SIMD code
    (:mod:`pamflow.audio.gl_kernel`)."""
    real = mag.dtype
    kernel = _kernel()
    other = rebuilt if prev is None else prev
    scale = real.type(0.0 if prev is None else factor)
    kernel(rebuilt.view(real), other.view(real), mag, scale, real.type(eps), out.view(real))


def _kernel() -> Any:
    from pamflow.audio.gl_kernel import update  # lazy: numba loads in a fraction of a second

    return update


def _torch_plan(plan: Plan, device: Any, dtype: Any) -> tuple[Any, Any]:
    import torch

    return (
        torch.tensor(plan.window, dtype=dtype, device=device),  # copies: the plan's are shared
        torch.tensor(plan.keep, dtype=dtype, device=device),
    )


def griffin_lim_batch(
    magnitudes: Sequence[np.ndarray],
    iterations: Sequence[int],
    seeds: Sequence[np.random.Generator],
    *,
    length: int,
    hop: int,
    momentum: float = MOMENTUM,
    device: str | torch.device = "cpu",
) -> list[np.ndarray]:
    """:func:`griffin_lim` of many clips of one ``length`` at once, in float32 on ``device``.

    Each clip has its own magnitude [bins, frames], iteration count and phase generator
    (the same draws as the one-clip engine makes). Clips leave the batch when their count
    is reached, so a batch costs its largest count once, not once per clip.
    """
    import torch

    n = len(magnitudes)
    if not n == len(iterations) == len(seeds):
        raise ValueError("griffin_lim_batch: magnitudes, iterations and seeds differ in length")
    if n == 0:
        return []
    bins, _ = magnitudes[0].shape
    plan = plan_for(length, 2 * (bins - 1), hop)
    dev = torch.device(device)
    window, keep = _torch_plan(plan, dev, torch.float32)
    order = sorted(range(n), key=lambda i: -int(iterations[i]))  # most iterations first
    mag = torch.as_tensor(
        np.stack([np.ascontiguousarray(magnitudes[i].T, dtype=np.float32) for i in order]),
        device=dev,
    )
    phase = np.stack([seeds[i].random(size=(bins, plan.frames)).T for i in order])
    angles = torch.polar(
        torch.ones_like(mag), torch.as_tensor(2 * np.pi * phase, device=dev).float()
    )
    angles *= mag
    factor = momentum / (1.0 + momentum)
    eps = torch.finfo(torch.float32).tiny
    counts = [int(iterations[i]) for i in order]
    results: dict[int, np.ndarray] = {}
    c, hop_ = plan.chunks, plan.hop

    def inverse(spec: Any) -> Any:
        frames_t = torch.fft.irfft(spec, n=plan.n_fft, dim=-1) * window
        if c * hop_ != plan.n_fft:
            frames_t = torch.nn.functional.pad(frames_t, (0, c * hop_ - plan.n_fft))
        parts = frames_t.reshape(frames_t.shape[0], plan.frames, c, hop_)
        out = frames_t.new_zeros(frames_t.shape[0], plan.frames + c - 1, hop_)
        for k in range(c):
            out[:, k : k + plan.frames] += parts[:, :, k]
        return out.reshape(frames_t.shape[0], plan.padded) * keep

    def finish(active: int, it: int) -> int:
        # rows [j, active) have exactly ``it`` iterations: rebuild them and drop them
        j = active
        while j > 0 and counts[j - 1] == it:
            j -= 1
        if j < active:
            done = inverse(angles[j:active])[:, plan.pad : plan.pad + length].cpu().numpy()
            for row, k in enumerate(range(j, active)):
                results[order[k]] = done[row]
        return j

    active = finish(n, 0)
    prev = None
    it = 0
    while active:
        x = inverse(angles[:active])
        frames = x.unfold(-1, plan.n_fft, plan.hop)[:, : plan.frames]
        rebuilt = torch.fft.rfft(frames * window, dim=-1)
        if prev is not None:
            new = rebuilt - factor * prev[:active]
        else:
            new = rebuilt
        angles = new * (mag[:active] / (new.abs() + eps))
        prev = rebuilt
        mag = mag[:active]
        it += 1
        active = finish(active, it)
    return [results[i] for i in range(n)]
