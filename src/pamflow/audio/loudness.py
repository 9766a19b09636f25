"""Levels: RMS in dBFS and integrated loudness in LUFS (ITU-R BS.1770, pyloudnorm)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS (-inf for silence)."""
    x = np.asarray(x, dtype=np.float64)
    p = float(np.mean(x * x)) if x.size else 0.0
    return 10.0 * np.log10(p) if p > 0 else float("-inf")


@lru_cache(maxsize=16)
def _meter(sample_rate: int):
    import pyloudnorm

    return pyloudnorm.Meter(sample_rate)


def loudness(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770, pyloudnorm).

    Clips shorter than one 400 ms gating block, or entirely below the gate, fall back to
    their RMS level in dBFS. Silence gives -inf.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < int(0.4 * sample_rate) + 1:
        return rms_db(x)
    with np.errstate(divide="ignore"):
        value = float(_meter(int(sample_rate)).integrated_loudness(x))
    return value if np.isfinite(value) else rms_db(x)


class StreamingLoudness:
    """BS.1770 integrated loudness of audio fed block by block, in bounded memory.

    The same K-weighting filters, 400 ms gating blocks with 75 % overlap, absolute and
    relative gates and channel gains as :func:`loudness` (pyloudnorm), computed from the
    filtered power of each 100 ms step: a recording of hours keeps ten numbers a second
    instead of its samples. Up to 5 channels are weighted as BS.1770 says; more are mixed
    to mono first, as the index does. Agrees with :func:`loudness` to about 1e-6 dB where
    100 ms is a whole number of samples (every common rate).
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.rate, self.channels = int(sample_rate), min(int(channels), 5)
        self._mix = channels > 5
        self._filters = [(f.b, f.a) for f in _meter(self.rate)._filters.values()]
        # each biquad's state, per channel, starting at rest (as pyloudnorm's lfilter does)
        self._zi = [
            [np.zeros(max(len(a), len(b)) - 1) for _ in range(self.channels)]
            for b, a in self._filters
        ]
        self._hop = max(1, round(0.1 * self.rate))
        self._carry = np.zeros((0, self.channels))
        self._steps: list[np.ndarray] = []  # per 100 ms: filtered power sum of each channel
        self.frames = 0
        self._power, self._count = 0.0, 0  # of the raw samples: the RMS fallback

    def feed(self, block: np.ndarray) -> None:
        from scipy.signal import lfilter

        x = np.asarray(block, dtype=np.float64)
        x = x.reshape(len(x), -1)
        if self._mix:
            x = x.mean(axis=1, keepdims=True)
        self._power += float(np.sum(x * x))
        self._count += x.size
        self.frames += len(x)
        y = np.empty_like(x)
        for ch in range(self.channels):
            col = x[:, ch]
            for k, (b, a) in enumerate(self._filters):
                col, self._zi[k][ch] = lfilter(b, a, col, zi=self._zi[k][ch])
            y[:, ch] = col
        y = np.concatenate([self._carry, y * y])
        whole = len(y) // self._hop * self._hop
        if whole:
            self._steps.append(y[:whole].reshape(-1, self._hop, self.channels).sum(axis=1))
        self._carry = y[whole:]

    def value(self) -> float:
        """The integrated loudness (LUFS) of everything fed; as :func:`loudness` for short
        or silent audio (RMS in dBFS, ``-inf``)."""
        block = int(0.4 * self.rate)
        p = self._power / self._count if self._count else 0.0
        fallback = 10.0 * np.log10(p) if p > 0 else float("-inf")
        if self.frames < block + 1:
            return fallback
        steps = np.concatenate([*self._steps, self._carry.sum(axis=0, keepdims=True)])
        n = int(np.round((self.frames / self.rate - 0.4) / 0.1)) + 1
        # a window is four 100 ms steps; its power sum over the steps that exist
        cs = np.vstack([np.zeros((1, self.channels)), np.cumsum(steps, axis=0)])
        hi = np.minimum(np.arange(n) + 4, len(steps))
        z = (cs[hi] - cs[np.minimum(np.arange(n), len(steps))]) / block
        gains = np.array([1.0, 1.0, 1.0, 1.41, 1.41][: self.channels])
        with np.errstate(divide="ignore"):
            lj = -0.691 + 10.0 * np.log10(z @ gains)
            above = lj >= -70.0
            if not above.any():
                return fallback
            rel = -0.691 + 10.0 * np.log10(z[above].mean(axis=0) @ gains) - 10.0
            keep = (lj > rel) & (lj > -70.0)
            value = (
                -0.691 + 10.0 * np.log10(z[keep].mean(axis=0) @ gains) if keep.any() else -np.inf
            )
        return float(value) if np.isfinite(value) else fallback
