"""``pamflow enhance``: adaptive EQ (:mod:`pamflow.models.enhance`) on files, folders and
domain datasets.

``enhance_paths(CKPT, IN, OUT)`` reads the inputs, learns a mask per input against the
scorer in ``CKPT`` and writes the outputs as float32 WAV files at the scorer's rate (16 kHz;
mono, as the scorer hears them):

- ``IN`` an audio file: ``OUT`` is the output file.
- ``IN`` a folder of audio files (any depth, any format :func:`pamflow.audio.load` reads):
  ``OUT/<same relative path>.wav``.
- ``IN`` a ``domain`` dataset (a folder with ``dataset.json``): its clips of ``domain``
  (all domains by default), the rows the training run of ``CKPT`` held out with
  ``split="eval"``, the first ``limit`` of them; ``OUT/<example_id>.wav``.

With several initialisations (``inits=("block", "random")``, the paper's ablation) each
writes into ``OUT/<init>/``. Inputs of one length are enhanced in batches (each keeps its
own mask). The result holds a record an input (scores before and after, log-spectral
distance, mask size) and, for each initialisation, :func:`pamflow.models.enhance.summarise`
over them: the share of inputs whose score moved towards the good domain while their
log-spectral distance to the input stayed within ``lsd_bound_db`` (its score fell by
``min_drop`` or more), and the share that crossed from cheap (>= 0.5) to good.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pamflow.audio import AUDIO_EXTENSIONS, encode, load
from pamflow.models import registry
from pamflow.models.checkpoint import load_checkpoint
from pamflow.models.enhance import MIN_DROP, EnhanceConfig, Enhanced, Init, enhance, summarise
from pamflow.models.scorer import Scorer
from pamflow.storage.files import atomic_write_bytes, resolve

#: the default bound on the log-spectral distance (dB) of an output from its input
LSD_BOUND_DB = 10.0


@dataclass
class Item:
    """One input: its name (the output's relative path without suffix) and waveform."""

    name: str
    audio: np.ndarray


def load_scorer(ckpt: str | os.PathLike | Scorer) -> tuple[Scorer, dict[str, Any]]:
    """The scorer in ``ckpt`` (or ``ckpt`` itself) and its training config (plain values)."""
    if isinstance(ckpt, Scorer):
        return ckpt.eval(), {}
    model = registry.load_model(ckpt)
    if not isinstance(model, Scorer):
        raise ValueError(
            f"{ckpt}: a {registry.entry_of(model).name} checkpoint; enhance needs a scorer "
            "(pamflow train scorer)"
        )
    return model, load_checkpoint(ckpt).get("extra", {}).get("train_config", {})


def is_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "dataset.json").exists()


def audio_files(folder: Path) -> list[Path]:
    """The audio files under ``folder`` (any depth), sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def read_inputs(
    inp: Path,
    scorer: Scorer,
    train_cfg: dict[str, Any],
    *,
    split: Literal["all", "eval"] = "all",
    domain: str | None = None,
    limit: int | None = None,
) -> list[Item]:
    """The inputs at ``inp`` (see the module docstring), at the scorer's rate."""
    sr = scorer.config.sample_rate
    if not inp.exists():
        raise FileNotFoundError(f"{inp}: no such file or folder")
    if is_dataset(inp):
        items = dataset_items(inp, sr, train_cfg, split=split, domain=domain)
    elif inp.is_dir():
        files = audio_files(inp)
        if not files:
            raise ValueError(f"{inp}: no audio files in this folder")
        items = [Item(str(p.relative_to(inp).with_suffix("")), load(str(p), sr)[0]) for p in files]
    else:
        items = [Item(inp.stem, load(str(inp), sr)[0])]
    return items[:limit] if limit is not None else items


def dataset_items(
    path: Path,
    sample_rate: int,
    train_cfg: dict[str, Any],
    *,
    split: Literal["all", "eval"],
    domain: str | None,
) -> list[Item]:
    """The clips of a ``domain`` dataset (of one domain, on one side of the split)."""
    from pamflow.models.scorer_eval import in_domains
    from pamflow.models.training.data import not_null, open_rows
    from pamflow.storage import Dataset

    recipe = Dataset.open(str(path)).recipe
    if recipe != "domain":
        raise ValueError(f"{path}: a {recipe!r} dataset; enhance reads domain datasets")
    if split == "eval" and not train_cfg.get("eval_fraction"):
        raise ValueError("split 'eval' needs a checkpoint whose training run held rows out")
    rows = open_rows(
        [str(path)],
        audio=("audio",),
        columns=("domain", "example_id"),
        sample_rate=sample_rate,
        split=split,
        eval_fraction=train_cfg.get("eval_fraction", 0.0),
        split_key=train_cfg.get("split_key"),
        keep=in_domains([domain]) if domain else not_null("domain"),
    )
    items = [rows[i] for i in range(len(rows))]
    return [Item(str(r["example_id"]), r["audio"].numpy()) for r in items]


def batches(items: Sequence[Item], size: int) -> Iterator[list[int]]:
    """Indices of ``items`` in batches of at most ``size`` inputs of one length."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_length[len(item.audio)].append(i)
    for idx in by_length.values():
        for k in range(0, len(idx), size):
            yield idx[k : k + size]


def output_path(out: Path, name: str, single: bool, init: str, several: bool) -> Path:
    """Where an output goes: ``out`` itself for one input file (``OUT.<init>.wav`` with
    several initialisations), else ``out[/<init>]/<name>.wav``."""
    if single:
        return out.with_name(f"{out.stem}.{init}.wav") if several else out
    return (out / init if several else out) / f"{name}.wav"


def enhance_paths(
    ckpt: str | os.PathLike | Scorer,
    inp: str | os.PathLike,
    out: str | os.PathLike,
    cfg: EnhanceConfig | None = None,
    *,
    inits: Sequence[Init] | None = None,
    split: Literal["all", "eval"] = "all",
    domain: str | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    lsd_bound_db: float = LSD_BOUND_DB,
    min_drop: float = MIN_DROP,
    keep: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Enhance the inputs at ``inp`` into ``out`` (see the module docstring); return the
    records (``rows``: one an input and initialisation) and the ``summary`` by initialisation.

    ``inits`` (default: ``cfg.init`` alone) runs each initialisation in turn. ``keep``
    inputs (the first ones) also keep their arrays under ``"views"`` (spectrograms,
    masks, saliency maps; for pages). ``progress(done, total)`` is called after each batch.
    """
    base = cfg or EnhanceConfig()
    scorer, train_cfg = load_scorer(ckpt)
    source = Path(inp)
    items = read_inputs(source, scorer, train_cfg, split=split, domain=domain, limit=limit)
    if not items:
        raise ValueError(f"{inp}: no inputs to enhance (check --domain and --split)")
    modes = list(inits or [base.init])
    dest = Path(out)
    single = source.is_file() and not dest.is_dir()  # a file into a folder: OUT/<stem>.wav
    rows: list[dict[str, Any]] = []
    views: list[dict[str, Any]] = []
    total, done = len(items) * len(modes), 0
    for mode in modes:
        cfg_m = dataclasses.replace(base, init=mode)
        for idx in batches(items, batch_size):
            x = torch.from_numpy(np.stack([items[i].audio for i in idx]).astype(np.float32))
            result = enhance(scorer, x, cfg_m)
            for j, (i, record) in enumerate(zip(idx, result.rows(), strict=True)):
                path = output_path(dest, items[i].name, single, mode, len(modes) > 1)
                path.parent.mkdir(parents=True, exist_ok=True)
                audio = result.audio[j].numpy()
                fs, where = resolve(str(path))
                wav = encode(audio, scorer.config.sample_rate, format="WAV")
                atomic_write_bytes(fs, where, wav)
                rows.append({"name": items[i].name, "init": mode, "out": str(path), **record})
                if i < keep:
                    views.append(view(scorer, items[i], mode, result, j, record))
            done += len(idx)
            if progress is not None:
                progress(done, total)
    summary = {
        m: summarise([r for r in rows if r["init"] == m], lsd_bound_db, min_drop) for m in modes
    }
    return {
        "input": str(inp),
        "output": str(out),
        "sample_rate": scorer.config.sample_rate,
        "config": dataclasses.asdict(base),
        "rows": rows,
        "summary": summary,
        "views": views,
    }


def view(
    scorer: Scorer, item: Item, init: str, result: Enhanced, j: int, record: dict[str, Any]
) -> dict[str, Any]:
    """What a page shows of one enhanced input: spectrograms (dB) of the input and output,
    the mask (dB) before and after smoothing, and the scorer's class-activation and
    gradient maps over the input and the output."""
    from pamflow.models.scorer import db_per_neper

    db = db_per_neper()
    x = torch.from_numpy(item.audio[None].astype(np.float32))
    with torch.no_grad():
        spec_in = scorer.spectrogram(x)
        spec_out = scorer.spectrogram(result.audio[j : j + 1])
    return {
        "name": item.name,
        "init": init,
        **record,
        "spec_in_db": (spec_in[0] * db).numpy(),
        "spec_out_db": (spec_out[0] * db).numpy(),
        "mask_db": (result.mask[j] * db).numpy(),
        "blocks_db": (result.blocks[j] * db).numpy(),
        "cam_in": scorer.cam(spec_in)[0].numpy(),
        "cam_out": scorer.cam(spec_out)[0].numpy(),
        "grad_in": scorer.gradient_map(spec_in)[0].numpy(),
        "audio_in": item.audio,
        "audio_out": result.audio[j].numpy(),
        "hop_s": scorer.config.hop_length / scorer.config.sample_rate,
        "sample_rate": scorer.config.sample_rate,
    }


def format_rows(result: dict[str, Any]) -> str:
    """A text table: one line an input and initialisation, then the summary lines."""
    head = f"{'input':<28} {'init':<7} {'before':>7} {'after':>7} {'LSD dB':>7} {'mask dB':>8}"
    lines = [head]
    for r in result["rows"]:
        lines.append(
            f"{r['name'][-28:]:<28} {r['init']:<7} {r['score_before']:>7.3f} "
            f"{r['score_after']:>7.3f} {r['lsd_db']:>7.2f} {r['mask_rms_db']:>8.2f}"
        )
    for mode, s in result["summary"].items():
        lines.append(
            f"{mode}: {s['n']} input(s), score {s['score_before']:.3f} -> {s['score_after']:.3f}"
            f" (0 = good), {100 * s['improved_within_bound']:.0f} % moved towards good by "
            f">= {s['min_drop']:g} within LSD <= {s['lsd_bound_db']:g} dB, "
            f"{100 * s['crossed_to_good']:.0f} % crossed 0.5 (mean LSD {s['lsd_db']:.2f} dB, mask RMS "
            f"{s['mask_rms_db']:.2f} dB)"
        )
    return "\n".join(lines)


__all__ = ["LSD_BOUND_DB", "enhance_paths", "format_rows", "load_scorer", "read_inputs"]
