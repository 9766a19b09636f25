"""What a training run reports: running sums between log records (:class:`Window`), the
``metrics.jsonl`` file (:class:`MetricsLog`) and its plot (:func:`plot_metrics`).

A record is one JSON object a line: ``step``, ``epoch``, ``split`` ("train" or "eval"),
``loss`` (mean over the examples), ``accuracy`` (None when the task counts nothing),
``lr``, ``examples`` and ``examples_per_s`` (wall time, data loading included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from pamflow.storage.files import atomic_open


class Window:
    """Running sums over the steps since the last log record (synchronised only when read)."""

    def __init__(self) -> None:
        # sums of tensors once a step is added: read (and synchronised) by record() only
        self.loss: Tensor | float = 0.0
        self.correct: Tensor | float = 0.0
        self.counted = 0
        self.n, self.batches, self.seconds = 0, 0, 0.0

    def add(self, loss: Tensor, correct: Tensor, n: int, seconds: float) -> None:
        self.loss = self.loss + loss.float() * n
        self.correct = self.correct + correct.float().sum()
        self.counted += correct.numel()
        self.n, self.batches, self.seconds = self.n + n, self.batches + 1, self.seconds + seconds

    def record(self, step: int, epoch: int, split: str, lr: float) -> dict[str, Any]:
        n = max(self.n, 1)
        acc = float(self.correct) / self.counted if self.counted else None
        return {
            "step": step,
            "epoch": epoch,
            "split": split,
            "loss": float(self.loss) / n,
            "accuracy": acc,
            "lr": lr,
            "examples": self.n,
            "examples_per_s": self.n / self.seconds if self.seconds else None,
        }


class MetricsLog:
    """``metrics.jsonl``: appended one record a line, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def last(self, split: str) -> dict[str, Any] | None:
        return next((r for r in reversed(self.records()) if r["split"] == split), None)

    def truncate(self, step: int) -> None:
        """Keep the records up to ``step`` (those a resumed run will not write again)."""
        kept = [r for r in self.records() if r["step"] <= step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        with atomic_open(self.path, "w") as f:
            f.write(text)


def plot_metrics(metrics: Path, png: Path, title: str = "") -> Path:
    """Loss and accuracy against step, train and eval, from ``metrics.jsonl`` into ``png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = MetricsLog(metrics).records()
    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    for k, key in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, k + 1)
        for split, style in (("train", "-"), ("eval", "o-")):
            pts = [
                (r["step"], r[key]) for r in records if r["split"] == split and r[key] is not None
            ]
            if pts:  # few points (a short run): large markers, or one point is invisible
                size = 3 if len(pts) > 30 else 6
                ax.plot(*zip(*pts, strict=True), "o-" if len(pts) <= 30 else style,
                        label=split, markersize=size)  # fmt: skip
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(png, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return png


class RunStatus:
    """``progress.json``: where a run is, rewritten (atomically) at most every
    ``every_s`` seconds and at each epoch's end, for whoever watches the run (``pamflow
    train`` draws its progress bar from it, wherever the run executes).

    Fields: ``task``, ``step``, ``total_steps``, ``epoch``, ``epochs``, ``train_rows``,
    ``loss`` (of the last log record: reading it never stalls a GPU), ``examples_per_s``,
    ``eta_s``, ``eval`` (the last held-out figures), ``done``.
    """

    def __init__(self, path: Path, task: str, total_steps: int, epochs: int, rows: int) -> None:
        self.path, self.every_s = path, 0.5
        self.state: dict[str, Any] = {
            "task": task,
            "step": 0,
            "total_steps": total_steps,
            "epoch": 0,
            "epochs": epochs,
            "train_rows": rows,
            "loss": None,
            "examples_per_s": None,
            "eta_s": None,
            "eval": None,
            "done": False,
        }
        self._last = 0.0

    def update(self, *, force: bool = False, **fields: Any) -> None:
        import time

        self.state.update(fields)
        rate, left = self.state["examples_per_s"], self.state["total_steps"] - self.state["step"]
        batch = self.state.get("batch_size")
        if rate and batch:
            self.state["eta_s"] = max(left, 0) * batch / rate
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            with atomic_open(self.path, "w") as f:
                f.write(json.dumps(self.state))
