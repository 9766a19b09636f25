"""Lockstep: many rows made together, their Griffin-Lim steps computed in one batch.

A recipe makes its rows one after another: a row (or a JND sequence, whose every question
depends on the answer to the previous one) runs its perturbation chains step by step.
:func:`lockstep` runs a list of such tasks side by side instead. Each task runs in a thread
of its own, but never two at once: a task runs until it asks for a Griffin-Lim waveform
(:func:`submit`, called by the family's torch engines) or ends; then the next task runs.
When every task is waiting or done, the waiting requests go to
:func:`pamflow.audio.griffin_lim.griffin_lim_batch` together (grouped by clip length and
STFT size), each task gets its waveform back, and the tasks run on in the same way.

The torch engines compute each clip of a batch exactly as they compute it alone (measured
bit for bit on the CPU: ``tests/perturbations/test_lockstep.py``), so the tasks return what
they return run one after another, and a row made in a batch replays alone.

Outside :func:`lockstep`, :func:`submit` computes its request at once, alone.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from pamflow.audio.griffin_lim import griffin_lim_batch

T = TypeVar("T")


@dataclass
class Request:
    """One Griffin-Lim waveform to compute: the family's torch engines ask for it."""

    magnitude: np.ndarray  # [bins, frames], float32
    iterations: int
    rng: np.random.Generator  # draws the initial phase
    length: int
    hop: int
    device: str  # a torch device: "cpu", "cuda"

    def key(self) -> tuple[int, int, int, str]:
        """Requests with the same key go in one batch."""
        return (self.length, self.magnitude.shape[0], self.hop, self.device)


def compute(requests: Sequence[Request]) -> list[np.ndarray]:
    """The waveforms of ``requests``, in their order: one batch per key."""
    out: list[np.ndarray | None] = [None] * len(requests)
    groups: dict[tuple[int, int, int, str], list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.key(), []).append(i)
    for (length, _, hop, device), idx in groups.items():
        made = griffin_lim_batch(
            [requests[i].magnitude for i in idx],
            [requests[i].iterations for i in idx],
            [requests[i].rng for i in idx],
            length=length,
            hop=hop,
            device=device,
        )
        for i, y in zip(idx, made, strict=True):
            out[i] = y
    return [y for y in out if y is not None]


class _Aborted(BaseException):
    """Raised inside a waiting task when another task failed: it unwinds and ends."""


class _Task:
    def __init__(self, fn: Callable[[], Any], back: threading.Semaphore) -> None:
        self.fn, self.back = fn, back
        self.go = threading.Semaphore(0)
        self.request: Request | None = None
        self.answer: np.ndarray | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = self.aborted = False

    def body(self) -> None:
        _CURRENT.set(self)
        self.go.acquire()
        try:
            if not self.aborted:
                self.result = self.fn()
        except _Aborted:
            pass
        except BaseException as e:  # handed to the driver, which raises it
            self.error = e
        finally:
            self.done = True
            self.back.release()

    def wait(self, request: Request) -> np.ndarray:
        """Hand ``request`` to the driver and sleep until its waveform is back."""
        self.request = request
        self.back.release()
        self.go.acquire()
        if self.aborted:
            raise _Aborted
        answer, self.answer = self.answer, None
        assert answer is not None
        return answer


_CURRENT: contextvars.ContextVar[_Task | None] = contextvars.ContextVar(
    "pamflow_lockstep_task", default=None
)


def submit(request: Request) -> np.ndarray:
    """The waveform ``request`` asks for: from the next batch inside :func:`lockstep`, at
    once (alone) outside it."""
    task = _CURRENT.get()
    if task is None:
        return compute([request])[0]
    return task.wait(request)


def lockstep(
    tasks: Sequence[Callable[[], T]], on_batch: Callable[[int], None] | None = None
) -> list[T]:
    """``[task() for task in tasks]``, the tasks run side by side (see the module's
    docstring). A task that raises stops the others (each unwinds from where it waits) and
    its error is raised. The tasks see the caller's context variables (copied).
    ``on_batch(n)`` hears of each batch of ``n`` requests (benchmarks and tests)."""
    back = threading.Semaphore(0)
    jobs = [_Task(fn, back) for fn in tasks]
    threads = []
    for job in jobs:
        ctx = contextvars.copy_context()
        threads.append(threading.Thread(target=ctx.run, args=(job.body,), daemon=True))
    for t in threads:
        t.start()
    runnable = list(jobs)
    try:
        while runnable:
            for job in runnable:  # one at a time, in order, each to its next request or end
                job.go.release()
                back.acquire()
                if job.error is not None:
                    raise job.error
            waiting = [j for j in jobs if not j.done and j.request is not None]
            if waiting:
                if on_batch is not None:
                    on_batch(len(waiting))
                answers = compute([j.request for j in waiting if j.request is not None])
                for j, a in zip(waiting, answers, strict=True):
                    j.request, j.answer = None, a
            runnable = waiting
    finally:
        for job in jobs:
            if not job.done:  # stopped early (an error, an interrupt): let it unwind
                job.aborted = True
                job.go.release()
        for t in threads:
            t.join()
    return [job.result for job in jobs]
