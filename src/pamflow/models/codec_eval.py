"""Evaluating a codec network on ``codec`` pairs (codec-approximation paper, section 4.3).

:func:`evaluate_codec` is codecnet's evaluator (its registry entry's ``evaluators``), so
``pamflow eval CKPT --data CODEC_DATASET [--split eval] [--figures DIR]`` runs it. On each
pair (lossless ``x``, its MP3 coding ``y``) it compares, on the model's STFT (1024 points,
hop 512 by default), the magnitude spectrogram of ``y`` with three guesses at it:

- ``prediction``: the network's (the spectral net predicts magnitudes; the time net's
  waveform is taken through the same STFT);
- ``identity``: the lossless input itself (what "no codec" predicts);
- ``lowpass``: the input through a plain low-pass (an ideal one, in the Fourier domain of
  the whole clip) at the codec's cutoff, measured from the pairs: the lowest frequency
  above which the MP3's mean power stays ``CUTOFF_DROP_DB`` under the lossless one's
  (:func:`measured_cutoff`, from the first :data:`CUTOFF_ROWS` rows). That cutoff is
  read off the very pairs scored, so the low-pass is the best a plain low-pass can do.

Two figures per guess, each the mean over rows: ``spectral_l1``, the mean absolute
difference on the [0, 1] magnitude scale the spectral net is trained on (its training
loss); ``lsd_db``, the log-spectral distance: per frame, the RMS over bins of the level
difference in dB (levels floored at ``floor_db``), meaned over frames. ``beats_identity``
and ``beats_lowpass`` say whether the prediction is below both figures of each;
``rows_better_than_*`` give the share of rows where its spectral L1 is. With ``figures``,
the paper's Figure 2 is drawn: lossless / MP3 / prediction spectrograms of up to three
rows of distinct recordings (``codecnet-<kind>-spectrograms.png``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pamflow.models.codecnet import CodecNet, level_db
from pamflow.models.training.data import (
    BatchCollate,
    RowsDataset,
    Split,
    epoch_batches,
    open_rows,
    to_device,
)

AUDIO = ("lossless", "coded")
#: rows the cutoff is measured on, and how far under the lossless power the MP3's must stay
CUTOFF_ROWS = 64
CUTOFF_DROP_DB = 20.0
GUESSES = ("prediction", "identity", "lowpass")
#: rows of distinct recordings drawn in the figure
FIGURE_ROWS = 3


def lowpass(x: Tensor, sample_rate: int, cutoff_hz: float) -> Tensor:
    """``x`` ``[..., T]`` through an ideal low-pass at ``cutoff_hz`` (Fourier domain)."""
    spec = torch.fft.rfft(x, dim=-1)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate).to(x.device)
    return torch.fft.irfft(spec * (freqs <= cutoff_hz), n=x.shape[-1], dim=-1)


def cutoff_from_powers(lossless: np.ndarray, coded: np.ndarray, bin_hz: float) -> float:
    """The lowest frequency above which ``coded``'s mean power per bin stays
    :data:`CUTOFF_DROP_DB` under ``lossless``'s (bins where the lossless clips have next to
    no power, 60 dB under their loudest bin, count as under); the top bin's frequency when
    the codec keeps everything."""
    ratio = 10 * np.log10((coded + 1e-30) / (lossless + 1e-30))
    under = (ratio < -CUTOFF_DROP_DB) | (lossless <= float(np.max(lossless)) * 1e-6)
    above = np.flatnonzero(~under)
    top = len(lossless) - 1
    k = int(above[-1]) + 1 if above.size else 0
    return float(min(k, top) * bin_hz)


def lsd(a: Tensor, b: Tensor, model: CodecNet) -> Tensor:
    """Log-spectral distance (dB) ``[B]`` between normalised magnitudes ``[B, bins, frames]``."""
    diff = level_db(a, model.config) - level_db(b, model.config)
    return diff.pow(2).mean(1).sqrt().mean(1)


def _batches(rows: RowsDataset, batch_size: int, length: int | None) -> Any:
    collate = BatchCollate(length, AUDIO, "center")
    keys = epoch_batches(len(rows), batch_size, seed=0, epoch=0, shuffle=False, drop_last=False)
    for chunk in keys:
        yield collate([rows[k] for k in chunk])


@torch.no_grad()
def measured_cutoff(
    model: CodecNet, rows: RowsDataset, batch_size: int, length: int | None, device: torch.device
) -> float:
    """The codec's cutoff (Hz) on the first :data:`CUTOFF_ROWS` rows (see the module)."""
    cfg = model.config
    sums = [np.zeros(cfg.bins), np.zeros(cfg.bins)]
    seen = 0
    for batch in _batches(rows, batch_size, length):
        batch = to_device(batch, device)
        for k, name in enumerate(AUDIO):
            level = level_db(model.spectrogram(batch[name]), cfg)
            power = 10.0 ** (level.double() / 10.0) - 10.0 ** (cfg.floor_db / 10.0)
            sums[k] += power.clamp(min=0.0).mean(2).sum(0).cpu().numpy()
        seen += len(batch[AUDIO[0]])
        if seen >= CUTOFF_ROWS:
            break
    return cutoff_from_powers(sums[0], sums[1], cfg.sample_rate / cfg.n_fft)


@torch.no_grad()
def evaluate_codec(
    model: CodecNet,
    paths: list[str],
    *,
    split: Split,
    train_cfg: dict[str, Any],
    batch_size: int,
    device: torch.device,
    clip_seconds: float | None,
    figures: Path | None = None,
) -> dict[str, Any]:
    """The figures of the module docstring over the ``split`` rows of the codec datasets."""
    cfg = model.config
    sr = cfg.sample_rate
    rows = open_rows(
        paths,
        audio=AUDIO,
        columns=("source_id",),
        sample_rate=sr,
        split=split,
        eval_fraction=train_cfg.get("eval_fraction", 0.0),
        split_key=train_cfg.get("split_key"),
    )
    if not len(rows):  # e.g. no recording held out: nothing to score, said so
        return {"kind": cfg.kind, "n": 0, "sources": 0, "note": f"no {split} rows"}
    length = None if clip_seconds is None else round(clip_seconds * sr)
    cutoff = measured_cutoff(model, rows, batch_size, length, device)
    per: dict[str, dict[str, list[float]]] = {g: defaultdict(list) for g in GUESSES}
    shown: dict[str, list[np.ndarray]] = {}
    sources: list[str] = []
    for batch in _batches(rows, batch_size, length):
        batch = to_device(batch, device)
        x, y = batch["lossless"], batch["coded"]
        target = model.spectrogram(y)
        guesses = {
            "prediction": model.predicted_spectrogram(x),
            "identity": model.spectrogram(x),
            "lowpass": model.spectrogram(lowpass(x, sr, cutoff)),
        }
        for name, s in guesses.items():
            per[name]["spectral_l1"] += (s - target).abs().flatten(1).mean(1).tolist()
            per[name]["lsd_db"] += lsd(s, target, model).tolist()
        for i, source in enumerate(batch["source_id"]):
            if source not in shown and len(shown) < FIGURE_ROWS:
                shown[source] = [
                    level_db(s[i], cfg).cpu().numpy()
                    for s in (guesses["identity"], target, guesses["prediction"])
                ]
        sources += list(batch["source_id"])
    means = {g: {k: float(np.mean(v)) for k, v in per[g].items()} for g in GUESSES}
    l1 = {g: np.asarray(per[g]["spectral_l1"]) for g in GUESSES}
    pred = means["prediction"]
    results: dict[str, Any] = {
        "kind": cfg.kind,
        "n": len(sources),
        "sources": len(set(sources)),
        "cutoff_hz": cutoff,
        **means,
        "beats_identity": all(pred[k] < means["identity"][k] for k in pred),
        "beats_lowpass": all(pred[k] < means["lowpass"][k] for k in pred),
        "rows_better_than_identity": float(np.mean(l1["prediction"] < l1["identity"])),
        "rows_better_than_lowpass": float(np.mean(l1["prediction"] < l1["lowpass"])),
    }
    if figures is not None:
        path = Path(figures) / f"codecnet-{cfg.kind}-spectrograms.png"
        results["figure"] = str(draw_spectrograms(shown, model, path))
    return results


def draw_spectrograms(shown: dict[str, list[np.ndarray]], model: CodecNet, png: Path) -> Path:
    """The paper's Figure 2: rows lossless / coded / prediction, one column per recording
    (levels in dB re full scale), into ``png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from pamflow.storage.files import atomic_open

    cfg = model.config
    cols = max(1, len(shown))
    fig = Figure(figsize=(4.2 * cols, 8.4), layout="constrained")
    FigureCanvasAgg(fig)
    labels = ("lossless", "coded (the real codec)", f"prediction ({cfg.kind} net)")
    image = None
    for c, (source, levels) in enumerate(shown.items()):
        for r, (label, level) in enumerate(zip(labels, levels, strict=True)):
            ax = fig.add_subplot(3, cols, r * cols + c + 1)
            seconds = level.shape[1] * cfg.hop / cfg.sample_rate
            image = ax.imshow(
                level,
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=cfg.floor_db,
                vmax=0.0,
                extent=(0.0, seconds, 0.0, cfg.sample_rate / 2000.0),
            )
            ax.set_title(f"{label}\n{source}" if r == 0 else label, fontsize=9)
            ax.set_xlabel("s" if r == 2 else "")
            ax.set_ylabel("kHz" if c == 0 else "")
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.6, label="dB re full scale")
    png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(png, "wb") as f:
        fig.savefig(f, format="png", dpi=90)
    return png
