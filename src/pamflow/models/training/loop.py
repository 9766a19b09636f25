"""The training loop the three metrics share, nanoGPT-style: read :func:`fit` top to bottom.

A run writes into ``out_dir``:

- ``checkpoint.pt``: every ``checkpoint_every`` steps and at the end, atomically: the
  weights, model config and pamflow version (:func:`pamflow.models.checkpoint.save_checkpoint`)
  and, under ``extra``, the training config, the step, the loader position (epoch, batch in
  epoch), the optimiser and AMP-scaler states and every RNG state (torch, CUDA, numpy, Python
  and the augmentation generator) as tensors and plain values, so ``torch.load(...,
  weights_only=True)`` reads it and ``resume=True`` continues exactly where it stopped.
- ``model.pt``: written once the run is complete (weights, config, the summary; no
  optimiser state). Its presence marks a finished run: a flow may skip a stage that has one.
- ``metrics.jsonl``: one JSON record per line: ``step``, ``epoch``, ``split`` ("train" or
  "eval"), ``loss``, ``accuracy``, ``lr``, ``examples_per_s``, ``examples``.
- ``metrics.png``: the loss and accuracy curves (matplotlib, Agg canvas).
- ``progress.json``: where the run is (step of total, epoch, loss, examples/s, ETA, the last
  held-out figures), rewritten every half second: ``pamflow train`` draws its progress bar
  from it (:class:`pamflow.models.training.log.RunStatus`).

Determinism: the batches of an epoch depend only on ``(seed, epoch)``
(:func:`pamflow.models.training.data.epoch_batches`), random crops on the batch's seed, augmentation
on a ``torch.Generator`` and dropout on torch's RNG, both saved in the checkpoint. On the CPU
with ``num_workers=0``, N steps straight and N/2 + resume N/2 give bit-identical weights.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor
from torch.utils.data import DataLoader

import pamflow
from pamflow.models.base import MetricModel
from pamflow.models.checkpoint import save_checkpoint
from pamflow.models.training.augment import augment
from pamflow.models.training.config import TrainConfig, resolve_device
from pamflow.models.training.data import (
    BatchCollate,
    RowFilter,
    RowsDataset,
    Split,
    epoch_batches,
    open_rows,
    to_device,
)
from pamflow.models.training.log import MetricsLog, RunStatus, Window, plot_metrics
from pamflow.models.training.state import restore, rng_state

# A task is typed by the model its step trains (an architecture, or a protocol such as
# "has a JND classifier") and the training config its step reads (a model's own subclass
# of TrainConfig, e.g. CDPAM's with ``temperature``). Tasks are contravariant in both: one
# written for a wider model or config (JND_TASK: any JND classifier, any config) serves
# every narrower one.
M = TypeVar("M", bound=MetricModel)
C = TypeVar("C", bound=TrainConfig)
M_contra = TypeVar("M_contra", bound=MetricModel, contravariant=True)
C_contra = TypeVar("C_contra", bound=TrainConfig, contravariant=True)
C_co = TypeVar("C_co", bound=TrainConfig, covariant=True)


class RunFolderError(ValueError):
    """A run folder that already holds a run, when the run was not asked to resume it."""


@dataclass
class Context(Generic[C_co]):
    """What a task's step function sees besides the model and the batch."""

    cfg: C_co
    sample_rate: int
    generator: torch.Generator | None  # augmentation draws; None when evaluating

    def augment(self, x: Tensor) -> Tensor:
        """The online augmentation of one input batch (identity when evaluating)."""
        if self.generator is None or not self.cfg.augment:
            return x
        return augment(x, self.sample_rate, self.generator, self.cfg.silence_s, self.cfg.gain_db)


#: a step: (model, batch on the device, context) -> (mean loss, per-item correctness [N])
StepFn = Callable[[M_contra, dict[str, Any], Context[C_contra]], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Task(Generic[M_contra, C_contra]):
    """One kind of training: what it reads and how a batch becomes a loss.

    ``name`` is stored in checkpoints (a resume must match it); ``model_name`` is the
    checkpoint registry key. ``audio``/``columns`` are read from the datasets; ``keep``
    drops rows (e.g. unlabelled ones); with ``group_columns`` no value of those columns
    appears twice in a batch. ``train_mode`` puts the model in training mode (frozen parts
    may stay in eval mode).
    """

    name: str
    model_name: str
    audio: tuple[str, ...]
    columns: tuple[str, ...]
    step: StepFn[M_contra, C_contra]
    keep: RowFilter | None = None
    group_columns: tuple[str, ...] = ()
    train_mode: Callable[[M_contra], Any] = lambda model: model.train()


def fit(
    task: Task[M, C],
    model: M,
    data: list[str],
    out_dir: str | os.PathLike,
    cfg: C,
    *,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (already initialised: seed it first) on ``data``; return a summary.

    ``resume=True`` continues from ``out_dir/checkpoint.pt`` when it exists (and starts
    afresh when it does not). ``meta`` (plain values) is stored in the checkpoints.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    use_amp = cfg.amp and cuda
    sr = model.config.sample_rate
    length = round(cfg.clip_seconds * sr)

    # -- data: the training rows and the held-out rows, disjoint by split key ------------
    def rows(split: Split) -> RowsDataset:
        return open_rows(
            data,
            audio=task.audio,
            columns=task.columns,
            sample_rate=sr,
            split=split,
            eval_fraction=cfg.eval_fraction,
            split_key=cfg.split_key,
            keep=task.keep,
            group_columns=task.group_columns,
        )

    train_set = rows("train")
    eval_set = rows("eval") if cfg.eval_fraction > 0 else None

    def batches(epoch: int) -> list[list[tuple[int, int]]]:
        return epoch_batches(
            len(train_set), cfg.batch_size, seed=cfg.seed, epoch=epoch, groups=train_set.groups
        )

    if not batches(0):
        apart = f" with no {list(task.group_columns)} value twice" if task.group_columns else ""
        raise ValueError(
            f"{task.name}: {len(train_set)} training row(s) in {data} make no full batch of "
            f"{cfg.batch_size}{apart}; lower batch_size or add data"
        )

    # -- model, optimiser, RNG; or all of them from the last checkpoint -----------------
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (
        torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.weight_decay
        else torch.optim.Adam(params, lr=cfg.lr)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    gen = torch.Generator().manual_seed(cfg.seed)  # augmentation draws
    step, epoch, batch_in_epoch = 0, 0, 0
    ckpt_path, final_path = out / "checkpoint.pt", out / "model.pt"
    log = MetricsLog(out / "metrics.jsonl")
    if not resume and (ckpt_path.exists() or log.path.exists() or final_path.exists()):
        raise RunFolderError(
            f"{out}: holds a training run already ({', '.join(p.name for p in (ckpt_path, final_path, log.path) if p.exists())}); "
            "resume it (--resume) or train into a new folder"
        )
    if resume and not ckpt_path.exists():
        warnings.warn(f"{out}: no checkpoint.pt to resume from; starting a new run", stacklevel=2)
    final_path.unlink(missing_ok=True)  # this run is not finished until it writes it again
    if resume and ckpt_path.exists():
        step, epoch, batch_in_epoch = restore(
            ckpt_path, task.name, cfg, model, opt, scaler, gen, cuda
        )
        log.truncate(step)
    else:
        log.truncate(-1)

    def save_state(path: Path) -> None:
        state = {
            "task": task.name,
            "train_config": cfg.to_dict(),
            "meta": meta or {},
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "optimizer": opt.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rng_state(gen, cuda),
        }
        save_checkpoint(path, task.model_name, model.config, model.state_dict(), state)

    # -- the loop ------------------------------------------------------------------------
    max_steps = cfg.max_steps or math.inf
    total_steps = cfg.epochs * len(batches(0))  # the schedule's length: max_steps cuts it short
    window = Window()
    ctx = Context(cfg, sr, gen)
    train_time, train_examples, last_eval, last_epoch = 0.0, 0, None, epoch
    # one loader for the whole run: its worker processes (num_workers > 0) start once and
    # stay, and each epoch only hands them that epoch's batches
    plan = Batches()
    loader = batch_loader(train_set, plan, BatchCollate(length, task.audio, "random"), cfg)
    status = RunStatus(out / "progress.json", task.name, total_steps, cfg.epochs, len(train_set))
    status.update(force=True, step=step, epoch=epoch, batch_size=cfg.batch_size)
    while step < max_steps and epoch < cfg.epochs:
        keys = batches(epoch)
        tick = time.perf_counter()
        plan.keys = keys[batch_in_epoch:]
        for batch in loader:
            batch = to_device(batch, device)
            task.train_mode(model)
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(step, total_steps)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss, correct = task.step(model, batch, ctx)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step, batch_in_epoch, last_epoch = step + 1, batch_in_epoch + 1, epoch

            n = len(batch[task.audio[0]])
            now = time.perf_counter()
            window.add(loss.detach(), correct.detach(), n, now - tick)
            train_time, train_examples, tick = train_time + now - tick, train_examples + n, now
            if step % cfg.log_every == 0:
                record = window.record(step, epoch, "train", opt.param_groups[0]["lr"])
                log.write(record)
                status.update(loss=record["loss"])
                window = Window()
            rate = train_examples / train_time if train_time else None
            status.update(step=step, epoch=epoch, examples_per_s=rate)
            if batch_in_epoch == len(keys):  # the epoch's last batch: evaluate, move on
                if eval_set is not None and len(eval_set):
                    last_eval = evaluate_rows(task, model, eval_set, cfg)
                    log.write({"step": step, "epoch": epoch, "split": "eval", **last_eval})
                epoch, batch_in_epoch = epoch + 1, 0
                status.update(force=True, epoch=epoch, eval=last_eval)
            if step % cfg.checkpoint_every == 0:  # after the epoch's end: a resume repeats none
                save_state(ckpt_path)
            if step >= max_steps:
                break

    del loader  # its worker processes end here, not whenever the collector gets to them
    # -- the end: last partial log window, checkpoint, final model, plot -----------------
    if window.n:
        log.write(window.record(step, last_epoch, "train", opt.param_groups[0]["lr"]))
    save_state(ckpt_path)
    summary = {
        "task": task.name,
        "out_dir": str(out),
        "steps": step,
        "epochs_completed": epoch,
        "train_rows": len(train_set),
        "eval_rows": len(eval_set) if eval_set is not None else 0,
        "examples_per_s": train_examples / train_time if train_time else None,
        "final_train": log.last("train"),
        "final_eval": last_eval,
        "checkpoint": str(ckpt_path),
        "model": str(final_path),
        "metrics": str(log.path),
        "plot": str(plot_metrics(log.path, out / "metrics.png", title=task.name)),
        "pamflow_version": pamflow.__version__,
    }
    extra = {
        "task": task.name,
        "train_config": cfg.to_dict(),
        "meta": meta or {},
        "summary": summary,
        "complete": True,
    }
    save_checkpoint(final_path, task.model_name, model.config, model.state_dict(), extra)
    status.update(
        force=True, step=step, epoch=epoch, done=True, loss=(log.last("train") or {}).get("loss")
    )
    return summary


class Batches:
    """The batches a loader hands out next (row keys); set ``keys`` before each pass."""

    def __init__(self, keys: list[list[tuple[int, int]]] | None = None) -> None:
        self.keys = keys or []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def batch_loader(
    dataset: RowsDataset,
    batches: Batches,
    collate_fn: BatchCollate,
    cfg: TrainConfig,
) -> DataLoader:
    """A DataLoader over ``batches`` of ``dataset`` (pinned memory on CUDA). Its workers
    persist from one pass to the next (each pass reads ``batches`` anew), and its own
    generator (workers' base seed) keeps torch's global RNG untouched: rows and crops
    depend only on the batch keys, never on a worker's RNG."""
    workers = cfg.num_workers
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        # workers start from a fresh server process, not a fork of this one: a training
        # flow runs threads (Prefect, Dask, pyarrow) that a fork would copy mid-flight
        multiprocessing_context="forkserver" if workers > 0 else None,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        collate_fn=collate_fn,
        pin_memory=resolve_device(cfg.device).type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),
    )


@torch.no_grad()
def evaluate_rows(task: Task[M, C], model: M, dataset: RowsDataset, cfg: C) -> dict[str, Any]:
    """Mean loss and accuracy of ``task`` over ``dataset`` (centred crops of ``clip_seconds``,
    no augmentation, eval mode: nothing random is drawn, so evaluating during a run does not
    change what its training sees). The model must be on ``cfg.device`` already."""
    device = resolve_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    model.eval()
    keys = epoch_batches(
        len(dataset),
        cfg.batch_size,
        seed=cfg.seed,
        epoch=0,
        shuffle=False,
        drop_last=False,
        groups=dataset.groups,
    )
    sr = model.config.sample_rate
    centred = BatchCollate(round(cfg.clip_seconds * sr), task.audio, "center")
    ctx = Context(cfg, sr, None)
    window = Window()
    tick = time.perf_counter()
    for batch in batch_loader(dataset, Batches(keys), centred, cfg):
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            loss, correct = task.step(model, batch, ctx)
        n = len(batch[task.audio[0]])
        now = time.perf_counter()
        window.add(loss, correct, n, now - tick)
        tick = now
    record = window.record(0, 0, "eval", cfg.lr)
    return {k: record[k] for k in ("loss", "accuracy", "examples", "examples_per_s")}
