"""The codec-approximation paper's experiment in miniature (sections 6 and 7, Tables 2-3).

:func:`run_codec_loss_experiment` trains the encoder network of Table 2
(:class:`pamflow.models.autoencoder.Autoencoder`) on the demo corpus's music, resampled to
16 kHz and band-limited to ``band_hz`` (3 kHz, section 6.1; an ideal low-pass in the
Fourier domain of each recording, zero phase), once per loss, with the same seed, steps,
batches and learning rate (Adam at 1e-3 with Keras' decay of 5e-6, Table 2):

- **A**, eq. 1: ``||x - x_p||_1``;
- **B**, eq. 2: ``time_weight * ||x - x_p||_1 + prediction_weight * ||S(x) - S(x_p)||_1``,
  ``S`` the normalised magnitude spectrogram codecnet's spectral net reads (weights and
  STFT of the spectral checkpoint);
- **C**, eq. 3: the spectral codec loss, ``pamflow.models.load(spectral_ckpt)``;
- **D**, eq. 4: the time-domain codec loss, ``pamflow.models.load(time_ckpt)``, on
  ``patch_time``-sample patches (16,384) where A to C take ``patch`` (66,048).

Training patches are drawn at random from the training recordings; the recordings the
codec networks held out (their checkpoint's ``eval_fraction``, by recording, as the
``codec`` datasets split) are the test set, so no loss network has heard them. Each model is
scored on every non-overlapping ``eval_frame``-sample frame of the test recordings (66,048,
as Table 3): the SNR (dB) averaged over frames, as the paper reports, and the log-spectral
distance (:func:`pamflow.measures.spectral.log_spectral_distance`, dB). The first test
frame of each model is written as a WAV beside ``results.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pamflow.audio import encode
from pamflow.corpus.sources import Sources
from pamflow.measures.spectral import log_spectral_distance
from pamflow.models.autoencoder import Autoencoder, AutoencoderConfig
from pamflow.models.codec_eval import lowpass
from pamflow.models.codecnet import SPECTRAL_PATCH, TIME_PATCH, CodecNet, normalised_magnitude
from pamflow.models.metric import PerceptualLoss, load
from pamflow.models.training.data import held_out
from pamflow.storage.files import atomic_open

LOSSES = ("A", "B", "C", "D")
#: Table 3 of the paper: SNR (dB) per model, trained 36 to 120 hours on a GPU
PAPER_SNR_DB = {"A": 59.3, "B": 55.6, "C": 62.7, "D": 45.6}
DESCRIPTIONS = {
    "A": "L1 (eq. 1)",
    "B": "L1 + magnitude STFT (eq. 2)",
    "C": "spectral codec loss (eq. 3)",
    "D": "time-domain codec loss (eq. 4)",
}


@dataclass(frozen=True)
class ExperimentConfig:
    """The settings shared by the four runs (Table 2 and section 6.1 where they apply)."""

    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 5e-6
    seed: int = 0
    patch: int = SPECTRAL_PATCH
    patch_time: int = TIME_PATCH
    eval_frame: int = SPECTRAL_PATCH
    band_hz: float = 3000.0
    sample_rate: int = 16000
    losses: tuple[str, ...] = LOSSES
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)

    def __post_init__(self) -> None:
        bad = [name for name in self.losses if name not in LOSSES]
        if bad or not self.losses:
            raise ValueError(f"losses: choose among {list(LOSSES)}, got {list(self.losses)}")
        m = 2**self.model.depth
        for name in ("patch", "patch_time", "eval_frame"):
            if getattr(self, name) % m or getattr(self, name) < m:
                raise ValueError(f"{name}: need a positive multiple of {m} samples")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.band_hz <= 0:
            raise ValueError("steps, batch_size, lr and band_hz must be positive")


def music(sources: Sources, sample_rate: int, band_hz: float) -> dict[str, np.ndarray]:
    """Every music recording of ``sources`` at ``sample_rate``, band-limited to ``band_hz``."""
    out = {}
    for source_id in sources.ids("music"):
        x = torch.from_numpy(np.array(sources.load(source_id, sample_rate), dtype=np.float32))
        out[source_id] = lowpass(x.double(), sample_rate, band_hz).float().numpy()
    if not out:
        raise ValueError("the sources hold no music recordings")
    return out


def patches(
    tracks: list[np.ndarray], n: int, length: int, rng: np.random.Generator
) -> torch.Tensor:
    """``n`` random patches of ``length`` samples (a random track each, zero-padded when
    shorter), ``[n, length]``."""
    out = np.zeros((n, length), dtype=np.float32)
    for i in range(n):
        x = tracks[int(rng.integers(len(tracks)))]
        start = int(rng.integers(max(0, x.size - length) + 1))
        seg = x[start : start + length]
        out[i, : seg.size] = seg
    return torch.from_numpy(out)


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    """SNR (dB) of the reconstruction ``y`` of ``x``."""
    noise = float(np.sum((x.astype(np.float64) - y) ** 2))
    return float(10 * np.log10(np.sum(x.astype(np.float64) ** 2) / max(noise, 1e-20)))


def loss_functions(
    spectral: PerceptualLoss | None, time_loss: PerceptualLoss | None
) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """Loss name -> ``fn(prediction, target)`` (scalars); C and D only with their nets."""

    def loss_a(p: Tensor, x: Tensor) -> Tensor:
        return (x - p).abs().mean()

    fns: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"A": loss_a}
    if spectral is not None:
        net = spectral.model
        assert isinstance(net, CodecNet)
        cfg = net.config

        def loss_b(p: Tensor, x: Tensor) -> Tensor:
            mag = [normalised_magnitude(v, cfg, net.window) for v in (p, x)]
            return (
                cfg.time_weight * loss_a(p, x)
                + cfg.prediction_weight * (mag[0] - mag[1]).abs().mean()
            )

        fns["B"] = loss_b
        fns["C"] = lambda p, x: spectral(p, x).mean()
    if time_loss is not None:
        fns["D"] = lambda p, x: time_loss(p, x).mean()
    return fns


def run_codec_loss_experiment(
    out_dir: str | Path,
    spectral_ckpt: str | None,
    time_ckpt: str | None,
    cfg: ExperimentConfig | None = None,
    *,
    sources: Sources | None = None,
    eval_fraction: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the autoencoder once per loss of ``cfg.losses``; write and return the results.

    C needs ``spectral_ckpt`` (B reads its STFT and weights too), D ``time_ckpt``: a codecnet
    ``model.pt`` of each kind. The test recordings are those the first checkpoint held out
    (``eval_fraction`` overrides; it must hold out at least one recording and keep one)."""
    cfg = cfg or ExperimentConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda line: None)
    need = {"B": spectral_ckpt, "C": spectral_ckpt, "D": time_ckpt}
    missing = [n for n in cfg.losses if n in need and not need[n]]
    if missing:
        raise ValueError(
            f"loss(es) {missing} need codecnet checkpoints: --spectral for B and C, --time for D"
        )
    nets = {
        kind: load(path) if path else None
        for kind, path in (("spectral", spectral_ckpt), ("time", time_ckpt))
    }
    for kind, net in nets.items():
        if net is not None and (
            not isinstance(net.model, CodecNet) or net.model.config.kind != kind
        ):
            raise ValueError(f"--{kind}: not a {kind} codecnet checkpoint")
    fraction = eval_fraction
    if fraction is None:
        fraction = _held_out_fraction([p for p in (spectral_ckpt, time_ckpt) if p])
    tracks = music(sources or Sources.demo(), cfg.sample_rate, cfg.band_hz)
    test = sorted(k for k in tracks if held_out(k, fraction))
    train = sorted(k for k in tracks if k not in test)
    if not test or not train:
        raise ValueError(
            f"eval_fraction {fraction}: holds out {len(test)} of {len(tracks)} music "
            "recordings; the experiment needs at least one on each side"
        )
    fns = loss_functions(nets["spectral"], nets["time"])
    rows = []
    for name in cfg.losses:
        say(f"model {name}: {DESCRIPTIONS[name]}, {cfg.steps} steps")
        rows.append(_train_one(name, fns[name], cfg, [tracks[k] for k in train], test, tracks, out))
        say(f"model {name}: SNR {rows[-1]['snr_db']:.2f} dB, LSD {rows[-1]['lsd_db']:.2f} dB")
    results = {
        "config": {**asdict(cfg), "losses": list(cfg.losses)},
        "spectral_checkpoint": spectral_ckpt,
        "time_checkpoint": time_ckpt,
        "train_recordings": train,
        "test_recordings": test,
        "models": rows,
    }
    with atomic_open(out / "results.json", "w") as f:
        f.write(json.dumps(results, indent=2))
    return results


def _held_out_fraction(ckpts: list[str]) -> float:
    """The ``eval_fraction`` the codec networks were trained with (one value)."""
    from pamflow.models.checkpoint import load_checkpoint

    values = {
        load_checkpoint(p)["extra"].get("train_config", {}).get("eval_fraction") for p in ckpts
    }
    values.discard(None)
    if len(values) != 1 or not next(iter(values)):
        raise ValueError(
            f"the codec networks held out {sorted(values) or 'nothing'}: give eval_fraction"
        )
    return float(values.pop())


def _train_one(
    name: str,
    fn: Callable[[Tensor, Tensor], Tensor],
    cfg: ExperimentConfig,
    train: list[np.ndarray],
    test: list[str],
    tracks: dict[str, np.ndarray],
    out: Path,
) -> dict[str, Any]:
    """One autoencoder trained with loss ``name``, then scored on the test frames."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = Autoencoder(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    length = cfg.patch_time if name == "D" else cfg.patch
    tick, losses = time.perf_counter(), []
    model.train()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr / (1.0 + cfg.lr_decay * step)
        x = patches(train, cfg.batch_size, length, rng)
        loss = fn(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - tick
    model.eval()
    snrs, lsds, first = [], [], None
    with torch.no_grad():
        for source_id in test:
            track = tracks[source_id]
            for start in range(0, track.size - cfg.eval_frame + 1, cfg.eval_frame):
                frame = track[start : start + cfg.eval_frame]
                y = model(torch.from_numpy(frame)[None])[0].numpy()
                snrs.append(snr_db(frame, y))
                lsds.append(log_spectral_distance(frame, y, cfg.sample_rate))
                first = y if first is None else first
    if not snrs:
        raise ValueError(f"no test recording lasts eval_frame = {cfg.eval_frame} samples")
    if first is not None:
        with atomic_open(out / f"model-{name}.wav") as f:
            f.write(encode(first, cfg.sample_rate, format="WAV"))
    return {
        "model": name,
        "loss": DESCRIPTIONS[name],
        "snr_db": float(np.mean(snrs)),
        "lsd_db": float(np.mean(lsds)),
        "paper_snr_db": PAPER_SNR_DB[name],
        "frames": len(snrs),
        "first_loss": losses[0],
        "last_loss": float(np.mean(losses[-max(1, len(losses) // 10) :])),
        "train_seconds": seconds,
        "patch": length,
    }


def format_results(results: dict[str, Any]) -> str:
    """The results as a markdown table (model, loss, SNR, LSD, the paper's SNR)."""
    lines = [
        "| model | loss | SNR (dB) | LSD (dB) | paper SNR (dB) | train s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results["models"]:
        lines.append(
            f"| {r['model']} | {r['loss']} | {r['snr_db']:.2f} | {r['lsd_db']:.2f} | "
            f"{r['paper_snr_db']} | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)
