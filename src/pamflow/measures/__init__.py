"""Objective measures as plain functions of arrays (a leaf: imports nothing from pamflow).

- :mod:`~pamflow.measures.levels`: active level, :func:`snr_db`, :func:`si_sdr`.
- :mod:`~pamflow.measures.spectral`: :func:`log_spectral_distance`.
- :mod:`~pamflow.measures.room`: :func:`rt60`, :func:`drr_db` of an impulse response.
- :mod:`~pamflow.measures.noresqa`: NORESQA's Δ bins and smoothed targets (paper 003, 3.3).

Used to set perturbation levels, to label datasets (NMR pairs), by the simulated listener
and by the tests. All take float arrays and return floats in dB or seconds.
"""

from pamflow.measures.levels import active_level_db, active_mask, active_power, si_sdr, snr_db
from pamflow.measures.room import direct_window, drr_db, rt60, schroeder_db
from pamflow.measures.spectral import log_spectral_distance

__all__ = [
    "active_level_db",
    "active_mask",
    "active_power",
    "direct_window",
    "drr_db",
    "log_spectral_distance",
    "rt60",
    "schroeder_db",
    "si_sdr",
    "snr_db",
]
