"""One side of an NMR pair (:mod:`pamflow.datasets.nmr`): the clean clip at its speech level
(and reverb), its degradation, and the bisection on strength that hits a target SI-SDR."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pamflow import perturbations
from pamflow.corpus.sources import Sources
from pamflow.perturbations.noise import CorpusNoiseParams, RecordedNoise, add_at_snr
from pamflow.perturbations.reverb import DrrParams

#: largest peak of the stored audio (clean and degraded scaled together)
HEADROOM = 0.99
#: the bisection stops within this distance of the target SI-SDR (dB)
SEARCH_TOL_DB = 0.1
_SEARCH_STEPS = 30
#: an output with less energy than this share of the input's counts as silent (-inf dB)
_SILENT = 1e-12


def sisdr_meter(clean: np.ndarray) -> Any:
    """``f(y) -> SI-SDR(clean, y)`` in dB, the formula of :func:`pamflow.measures.si_sdr`
    with the reference's terms computed once (the strength search calls it many times;
    element-wise sums also avoid BLAS thread start-up on busy machines). An output with
    (almost) no energy gives -inf, where ``si_sdr`` would call it perfect (no residual)."""
    r = np.asarray(clean, np.float64)
    r = r - r.mean()
    rr = float(np.sum(r * r))

    def meter(y: np.ndarray) -> float:
        e = np.asarray(y, np.float64)
        e = e - e.mean()
        if rr <= 0 or float(np.sum(e * e)) <= _SILENT * rr:
            return float("-inf")
        er = float(np.sum(e * r))
        noise = e - (er / rr) * r
        pn, pt = float(np.sum(noise * noise)), er * er / rr
        return float("inf") if pn <= 0 else 10.0 * np.log10(max(pt, 1e-20) / pn)

    return meter


def clean_side(
    clip: np.ndarray, sample_rate: int, side: dict[str, Any], sources: Sources
) -> np.ndarray:
    """The clean reference of a side before the common scaling: level gain, then reverb."""
    clean = (np.asarray(clip, np.float64) * side["gain"]).astype(np.float32)
    if side.get("reverb"):
        clean = perturbations.get("reverb_drr").apply(
            clean, sample_rate, DrrParams(**side["reverb"]), sources
        )
    return clean


def render_side(
    clip: np.ndarray, sample_rate: int, side: dict[str, Any], sources: Sources
) -> tuple[np.ndarray, np.ndarray]:
    """``(clean, degraded)`` of one side from its raw clip and params (float32, peak <= 0.99).

    Level gain, optional reverb, then the degradation; both scaled by one common factor."""
    clean = clean_side(clip, sample_rate, side, sources)
    d = side["degradation"]
    if d["kind"] == "noise":
        params = CorpusNoiseParams(**d["params"])
        fam = perturbations.get("corpus_noise")
        if not isinstance(fam, RecordedNoise):
            raise TypeError(f"corpus_noise is a {type(fam).__name__}, not a recorded noise family")
        noise = fam.noise(clean.size, sample_rate, params, sources)
        degraded = add_at_snr(clean, noise, params.snr_db, sample_rate)
    else:
        fam = perturbations.get(d["kind"])
        degraded = fam.apply(clean, sample_rate, fam.params_from_dict(d["params"]), sources)
    peak = max(float(np.max(np.abs(clean))), float(np.max(np.abs(degraded))))
    scale = HEADROOM / peak if peak > HEADROOM else 1.0
    return (
        (clean * np.float64(scale)).astype(np.float32),
        (np.asarray(degraded, np.float64) * scale).astype(np.float32),
    )


def search_strength(
    clean: np.ndarray,
    sample_rate: int,
    family: str,
    param_seed: int,
    pick_target: Callable[[float, float], float | None],
) -> tuple[float, dict[str, Any], float, float] | None:
    """Find the strength of ``family`` whose output has a chosen SI-SDR.

    The SI-SDR is measured at ρ = 100 and ρ = 0 (params drawn from ``param_seed`` at every
    ρ); ``pick_target(lowest, highest)`` returns a target in that span (None: give up),
    then ρ is bisected until the SI-SDR is within :data:`SEARCH_TOL_DB` of it. Returns
    ``(rho, params, si_sdr, target)`` or None."""
    fam = perturbations.get(family)
    meter = sisdr_meter(clean)

    def at(rho: float) -> tuple[float, dict[str, Any], float]:
        p = fam.sample(np.random.default_rng(param_seed), rho)
        return rho, p.to_dict(), meter(fam.apply(clean, sample_rate, p))

    strong, mild = at(100.0), at(0.0)
    target = pick_target(strong[2], mild[2])
    if target is None:
        return None
    lo, hi, best = 0.0, 100.0, min(strong, mild, key=lambda r: abs(r[2] - target))
    for _ in range(_SEARCH_STEPS):
        if abs(best[2] - target) <= SEARCH_TOL_DB:
            break
        mid = at(0.5 * (lo + hi))
        best = min(best, mid, key=lambda r: abs(r[2] - target))
        lo, hi = (mid[0], hi) if mid[2] > target else (lo, mid[0])
    return (*best, target)
