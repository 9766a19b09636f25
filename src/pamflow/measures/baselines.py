"""Conventional full-reference measures that learned metrics are compared with: log-spectral
distance, multi-resolution STFT distance, SI-SDR and (when the optional ``pesq`` package is
installed) PESQ, each as a *distance* (larger = further from the reference), and their
long-term-spectrum forms for comparing recordings of different content (retrieval).

Each function takes float arrays of one length; none resamples except :func:`pesq_distance`
(PESQ runs at 16 kHz, wide band, or 8 kHz, narrow band).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal

from pamflow.measures.levels import si_sdr
from pamflow.measures.spectral import log_spectral_distance

#: the FFT sizes of :func:`mrstft_distance` (hop a quarter, Hann window of the same size)
MRSTFT_FFTS = (512, 1024, 2048)
_EPS = 1e-7


def _magnitude(x: np.ndarray, n_fft: int) -> np.ndarray:
    """|STFT| ``[bins, frames]`` (Hann, hop n_fft/4); a clip shorter than a frame is padded."""
    x = np.asarray(x, np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    _, _, z = signal.stft(x, nperseg=n_fft, noverlap=n_fft - n_fft // 4, boundary=None)
    return np.abs(z)


def mrstft_distance(x: np.ndarray, y: np.ndarray, ffts: tuple[int, ...] = MRSTFT_FFTS) -> float:
    """Multi-resolution STFT distance (Yamamoto et al. 2020): the mean over ``ffts`` of the
    spectral convergence ``||Y| - |X||_F / ||Y||_F`` plus the mean absolute difference of
    the log magnitudes. 0 for identical signals."""
    total = 0.0
    for n_fft in ffts:
        mx, my = _magnitude(x, n_fft), _magnitude(y, n_fft)
        sc = np.linalg.norm(my - mx) / max(float(np.linalg.norm(my)), _EPS)
        mag = np.mean(np.abs(np.log(my + _EPS) - np.log(mx + _EPS)))
        total += float(sc + mag)
    return total / len(ffts)


def lsd_distance(x: np.ndarray, y: np.ndarray, sample_rate: int) -> float:
    """Log-spectral distance in dB (:func:`pamflow.measures.log_spectral_distance`)."""
    return log_spectral_distance(x, y, sample_rate)


def sisdr_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Negated SI-SDR of ``y`` against the reference ``x``, in dB (larger = further)."""
    return -si_sdr(x, y)


def pesq_available() -> bool:
    """Whether the optional ``pesq`` package imports."""
    try:
        import pesq  # noqa: F401
    except ImportError:
        return False
    return True


def pesq_distance(x: np.ndarray, y: np.ndarray, sample_rate: int) -> float:
    """Negated PESQ MOS-LQO of ``y`` against the reference ``x`` (wide band at 16 kHz; the
    signals are resampled to 16 kHz unless they are at 8 kHz, narrow band). NaN where PESQ
    cannot score the pair (no utterance found, e.g. silence)."""
    from pesq import pesq

    if sample_rate == 8000:
        rate, mode = 8000, "nb"
    else:
        rate, mode = 16000, "wb"
    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if sample_rate != rate:
        g = np.gcd(int(sample_rate), rate)
        a = signal.resample_poly(a, rate // g, sample_rate // g)
        b = signal.resample_poly(b, rate // g, sample_rate // g)
    try:
        return -float(pesq(rate, a, b, mode))
    except Exception:  # pesq raises its own errors for pairs it cannot align
        return float("nan")


def baseline_distances(sample_rate: int, *, pesq: bool | None = None) -> dict[str, Callable]:
    """The baselines as ``name -> fn(reference, test) -> distance``: ``lsd``, ``mrstft``,
    ``sisdr`` and, where the ``pesq`` package is installed (or ``pesq=True``), ``pesq``."""
    out: dict[str, Callable] = {
        "lsd": lambda x, y: lsd_distance(x, y, sample_rate),
        "mrstft": mrstft_distance,
        "sisdr": sisdr_distance,
    }
    if pesq if pesq is not None else pesq_available():
        out["pesq"] = lambda x, y: pesq_distance(x, y, sample_rate)
    return out


# -- recordings of different content: long-term spectra ------------------------------------


def long_term_log_spectrum(x: np.ndarray, n_fft: int = 512) -> np.ndarray:
    """The clip's mean power spectrum over frames, in dB ``[n_fft/2 + 1]``."""
    power = np.mean(_magnitude(x, n_fft) ** 2, axis=1)
    return 10 * np.log10(power + 1e-10)


def pairwise_lsd(clips: np.ndarray, n_fft: int = 512) -> np.ndarray:
    """``[N, N]`` RMS difference (dB) of the clips' long-term log spectra."""
    s = np.stack([long_term_log_spectrum(c, n_fft) for c in clips])
    sq = (s**2).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * s @ s.T) / s.shape[1]
    return np.sqrt(np.maximum(d2, 0.0))


def pairwise_mrstft(clips: np.ndarray, ffts: tuple[int, ...] = MRSTFT_FFTS) -> np.ndarray:
    """``[N, N]`` multi-resolution distance of the clips' long-term magnitude spectra: per
    resolution, spectral convergence plus mean |log difference|, averaged (the frame-wise
    :func:`mrstft_distance` needs common content; this compares the spectra alone)."""
    n = len(clips)
    total = np.zeros((n, n))
    for n_fft in ffts:
        m = np.stack([np.sqrt(np.mean(_magnitude(c, n_fft) ** 2, axis=1)) for c in clips])
        logm = np.log(m + _EPS)
        norms = np.maximum(np.linalg.norm(m, axis=1), _EPS)
        sq = (m**2).sum(1)
        diff = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * m @ m.T, 0.0))
        sc = diff / norms[None, :]
        mag = np.stack([np.mean(np.abs(logm - row), axis=1) for row in logm])
        total += sc + mag
    return total / len(ffts)


def pairwise_sisdr(clips: np.ndarray) -> np.ndarray:
    """``[N, N]`` negated SI-SDR (dB) between every two clips of one length: from their
    correlation ``r``, SI-SDR = 10 log10(r² / (1 - r²)) (means removed)."""
    c = np.asarray(clips, np.float64)
    c = c - c.mean(1, keepdims=True)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), _EPS)
    r2 = np.clip((c @ c.T) ** 2, 1e-12, 1 - 1e-12)
    return -10 * np.log10(r2 / (1 - r2))
