"""The Dask task runner pamflow's flows use: prefect-dask's, submitting without hashing.

Dask names a submitted task by hashing its function and arguments (``pure=True``, the
default) so that a second identical submission can share the first's result. A Prefect
task is never identical twice: prefect-dask wraps every submission in a new closure with
its own task-run id and the flow's serialized context (all of Prefect's settings). Hashing
all that (cloudpickle of the closure, ``tokenize`` of the context) was 14 % of a build
command's CPU, on the cores its workers need; with ``pure=False`` Dask names the task by a
random id instead, which is what the hash amounted to. ``benchmarks/task_overhead.py``
measures it. Imported when a flow runs (it loads Prefect and Dask).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import Any

from prefect.client.schemas.objects import RunInput
from prefect.tasks import Task
from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture


class BuildTaskRunner(DaskTaskRunner):
    """:class:`prefect_dask.DaskTaskRunner` whose submissions are not hashed (``pure=False``)."""

    def submit(  # type: ignore[override]
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectDaskFuture[Any]] | None = None,
        dependencies: dict[str, Set[RunInput]] | None = None,
    ) -> PrefectDaskFuture[Any]:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        # as prefect-dask 0.3.7 submits, but for pure=False
        parameters = self._optimize_futures(parameters)
        waits = self._optimize_futures(wait_for) if wait_for else None
        future = self.client.submit(
            task,
            parameters=parameters,
            wait_for=waits,
            dependencies=dependencies,
            return_type="state",
            pure=False,
        )
        return PrefectDaskFuture(wrapped_future=future, task_run_id=future.task_run_id)
