"""``pamflow train``'s progress bar, drawn from the run's ``progress.json``.

The training loop rewrites ``RUN/progress.json`` (and ``RUN/STAGE/progress.json`` for a
model trained in stages) every half second, wherever it runs: in this process, or on a Dask
worker when ``--cluster`` is given (the run folder is shared storage then). A thread here
reads the newest one and draws step of total, loss, examples/s and ETA, and prints one
line when an epoch's held-out figures arrive. Where stderr is no terminal (a log file, a
pipe), where a live bar shows nothing until it stops, each run prints a plain line instead:
when it is first seen, every :data:`PLAIN_EVERY_S` seconds (a step of full-size CDPAM on a
CPU takes minutes) and when it is done.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None  # not written yet, or being replaced


def _records(path: Path) -> list[dict[str, Any]]:
    """The complete lines of ``metrics.jsonl`` (a line being written is left for later)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.split("\n")[:-1]:  # the part after the last newline may be partial
        try:
            out.append(dict(json.loads(line)))
        except ValueError:
            continue
    return out


def _figures(values: dict[str, Any]) -> str:
    shown = [
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in values.items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and k not in ("examples", "examples_per_s", "step", "epoch")
    ]
    return ", ".join(shown[:6])


#: seconds between two plain progress lines of a run (stderr not a terminal)
PLAIN_EVERY_S = 30.0


def _eta(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "ETA -"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"ETA {h}:{m:02d}:{s:02d}" if h else f"ETA {m}:{s:02d}"


def _plain(name: str, state: dict[str, Any], elapsed: float) -> str:
    """One line of where a run is, for a console that is not a terminal."""
    loss, rate = state.get("loss"), state.get("examples_per_s")
    parts = [
        f"step {state.get('step', 0)}/{state.get('total_steps', '?')}",
        f"epoch {min(state.get('epoch', 0) + 1, state.get('epochs', 1))}/{state.get('epochs', '?')}",
        f"loss {loss:.4f}" if isinstance(loss, float) else "",
        f"{rate:.1f} ex/s" if isinstance(rate, float) else "",
        "done" if state.get("done") else _eta(state.get("eta_s")),
        f"{int(elapsed) // 60}:{int(elapsed) % 60:02d} elapsed",
    ]
    return f"{name}: " + ", ".join(p for p in parts if p)


@contextmanager
def training_progress(
    out: str | Path, console: Console, every_s: float = 0.5, plain_every_s: float = PLAIN_EVERY_S
) -> Iterator[None]:
    """Show the progress of the run writing into ``out`` while the body runs."""
    out = Path(out)
    start = time.monotonic()
    said: dict[str, tuple[float, bool]] = {}  # run -> (when its last plain line was, done)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("{task.fields[epoch]}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} ex/s"),
        TextColumn("{task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    stop = threading.Event()
    bars: dict[str, Any] = {}
    printed: dict[Path, int] = {}  # eval records already shown, per run folder

    def draw() -> None:
        found = sorted(
            (p for p in out.rglob("progress.json") if p.is_file()) if out.is_dir() else [],
            key=lambda p: p.stat().st_mtime_ns,
        )
        for path in found:  # every stage's run, oldest first
            state = _read(path)
            if state:
                show(path.parent, state)

    def show(folder: Path, state: dict[str, Any]) -> None:
        name = str(state.get("task", "training"))
        if name not in bars:
            bars[name] = progress.add_task(name, total=state.get("total_steps") or None,
                                           epoch="", loss="-", rate="-", eta="")  # fmt: skip
        loss, rate = state.get("loss"), state.get("examples_per_s")
        progress.update(
            bars[name],
            completed=state.get("step", 0),
            total=state.get("total_steps") or None,
            epoch=f"epoch {min(state.get('epoch', 0) + 1, state.get('epochs', 1))}/"
            f"{state.get('epochs', '?')}",
            loss=f"{loss:.4f}" if isinstance(loss, float) else "-",
            rate=f"{rate:.1f}" if isinstance(rate, float) else "-",
            eta="done" if state.get("done") else _eta(state.get("eta_s")),
        )
        # the epochs' held-out figures from metrics.jsonl: every one, however fast the run
        evals = [r for r in _records(folder / "metrics.jsonl") if r.get("split") == "eval"]
        for record in evals[printed.get(folder, 0) :]:
            progress.console.print(
                f"{name} epoch {int(record.get('epoch', 0)) + 1}/{state.get('epochs')}: "
                f"held-out {_figures(record)}"
            )
        printed[folder] = max(printed.get(folder, 0), len(evals))
        if not progress.console.is_terminal:
            now, done = time.monotonic(), bool(state.get("done"))
            last = said.get(name)
            if (
                last is None
                or (done and not last[1])
                or (not done and now - last[0] >= plain_every_s)
            ):
                progress.console.print(_plain(name, state, now - start))
                said[name] = (now, done)

    def watch() -> None:
        while not stop.wait(every_s):
            draw()

    thread = threading.Thread(target=watch, name="pamflow-train-progress", daemon=True)
    progress.start()
    thread.start()
    finished = False
    try:
        yield
        finished = True
    finally:
        stop.set()
        thread.join()
        if finished:
            draw()
        else:  # an error: the bar goes, so that the error is the one line left
            progress.live.transient = True
        progress.stop()


__all__ = ["training_progress"]
