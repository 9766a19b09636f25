"""The Dask task runner pamflow's flows use: prefect-dask's, with a cheaper submission.

prefect-dask 0.3.7 (``PrefectDaskClient.submit``) does three things per task that cost the
flow's process CPU on the cores its workers need, and that this runner does once or not at
all, sending the workers the same call:

* **Hashing.** Dask names a submitted task by hashing its function and arguments
  (``pure=True``, the default) so that a second identical submission can share the first's
  result. A Prefect task is never identical twice (a new task-run id each time); hashing
  the closure and context was 14 % of a build command's CPU. Submissions here are
  ``pure=False``: Dask names the task by a random id, which is what the hash amounted to.
* **The settings dump.** ``prefect.context.serialize_context`` dumps every Prefect setting
  (``SettingsContext.serialize``: ~250 models, each secret checked) for every task, though
  they cannot change within a flow run without a new settings context. Here it is dumped
  once per settings context (:meth:`BuildTaskRunner.context`) and the rest of the context
  is serialized by Prefect as before.
* **A new closure.** Each submission wrapped the task in a closure made on the spot, which
  cloudpickle pickles by value (scanning for the modules it uses). Here one module-level
  function (:func:`run_task`) is pickled by reference.
* **Decorated functions, by value.** ``@task`` and ``@flow`` put a ``Task`` or ``Flow``
  under the function's name, so pickle cannot find the function itself there and Dask
  falls back to cloudpickle, which pickles the function by value: its code, its globals
  (every task the flow calls, each by value in turn) and a scan of ``sys.modules``, for
  the task and again for the flow that every submission's context carries. Here the task
  and the context are pickled beforehand (:func:`freeze`) by a pickler that sends such a
  function as the name of the task or flow that holds it (:func:`decorated`); Dask
  pickles the bytes, and the parameters and futures as before.

On the worker, Prefect validated the settings dump into settings objects again for every
task run; :func:`run_task` makes them once while the dump stays the same.

``benchmarks/task_overhead.py`` measures it. Imported when a flow runs (it loads Prefect
and Dask).
"""

from __future__ import annotations

import asyncio
import importlib
import pickle
import sys
import types
from collections.abc import Iterable, Set
from typing import Any
from uuid import uuid4

import cloudpickle
from dask.utils import funcname
from distributed import Client, Future
from prefect import Flow
from prefect.client.schemas.objects import RunInput
from prefect.context import SettingsContext, serialize_context
from prefect.task_engine import run_task_async, run_task_sync
from prefect.tasks import Task
from prefect.utilities.engine import collect_task_run_inputs_sync
from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture

#: the last settings dump a task run brought to this process, and the settings made of it
_hydrated: tuple[dict[str, Any], dict[str, Any]] | None = None


def hydrated_settings(dumped: dict[str, Any]) -> dict[str, Any]:
    """``SettingsContext`` arguments made from ``dumped`` (a ``SettingsContext.serialize``):
    the settings objects themselves, made once for as long as the dump stays the same.
    Prefect validates the whole dump again for every task run (~60 ms of CPU); equal dumps
    make equal settings, and comparing two takes microseconds."""
    global _hydrated
    last = _hydrated
    if last is not None and last[0] == dumped:
        return last[1]
    made = SettingsContext(**dumped)
    kwargs = {"profile": made.profile, "settings": made.settings}
    _hydrated = (dumped, kwargs)
    return kwargs


def decorated(module: str, name: str) -> Any:
    """The function the task or flow at ``module.name`` decorates (how :func:`freeze` sends
    it)."""
    return getattr(importlib.import_module(module), name).fn


class _Pickler(cloudpickle.Pickler):
    """cloudpickle, but a function that a module holds as a Prefect task or flow of the
    same name is sent as that name (:func:`decorated`), as pickle sends plain functions."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType) and _importable(obj.__module__, obj.__qualname__):
            holder = getattr(sys.modules.get(obj.__module__), obj.__qualname__, None)
            if isinstance(holder, Task | Flow) and holder.fn is obj:
                return decorated, (obj.__module__, obj.__qualname__)
        return super().reducer_override(obj)


def _importable(module: str, qualname: str) -> bool:
    """Whether a worker can find ``module.qualname`` by importing: a module-level name of a
    module other than the script run as ``__main__`` (a worker's ``__main__`` is another),
    and not one the user asked cloudpickle to send by value."""
    by_value: set[str] = getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", set())
    top = module.split(".")[0]
    return "." not in qualname and module != "__main__" and not {module, top} & by_value


def freeze(value: Any) -> bytes:
    """``value`` pickled by :class:`_Pickler` (what ``pickle.loads`` makes again)."""
    import io

    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def run_task(frozen: bytes, **call: Any) -> Any:
    """Run a Prefect task run on a Dask worker: what prefect-dask's per-task closure does,
    the task and its context unpickled from ``frozen`` (:func:`freeze`), with the flow's
    settings made once per worker (:func:`hydrated_settings`)."""
    call.update(pickle.loads(frozen))
    context = call.get("context") or {}
    if context.get("settings_context"):
        settings = hydrated_settings(context["settings_context"])
        call["context"] = {**context, "settings_context": settings}
    if call["task"].isasync:
        return asyncio.run(run_task_async(**call))
    return run_task_sync(**call)


class _DumpedSettings:
    """Stands in for a :class:`prefect.context.SettingsContext` already serialized."""

    def __init__(self, dumped: dict[str, Any]) -> None:
        self.dumped = dumped

    def serialize(self, include_secrets: bool = True) -> dict[str, Any]:
        return self.dumped


class BuildTaskRunner(DaskTaskRunner):
    """:class:`prefect_dask.DaskTaskRunner` whose submissions are unhashed, dump Prefect's
    settings once per settings context, and pickle no closure (see the module's text)."""

    _settings_of: SettingsContext | None = None
    _settings_dump: dict[str, Any] | None = None

    def context(self, asset: dict[str, Any]) -> dict[str, Any]:
        """``serialize_context(asset_ctx_kwargs=asset)``, the settings dumped once."""
        current = SettingsContext.get()
        if current is None:
            return serialize_context(asset_ctx_kwargs=asset)
        if current is not self._settings_of or self._settings_dump is None:
            self._settings_of, self._settings_dump = current, current.serialize()
        token = SettingsContext.__var__.set(_DumpedSettings(self._settings_dump))  # type: ignore[arg-type]
        try:
            return serialize_context(asset_ctx_kwargs=asset)
        finally:
            SettingsContext.__var__.reset(token)

    def submit(  # type: ignore[override]
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectDaskFuture[Any]] | None = None,
        dependencies: dict[str, Set[RunInput]] | None = None,
    ) -> PrefectDaskFuture[Any]:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        # as prefect-dask 0.3.7's DaskTaskRunner.submit and PrefectDaskClient.submit do
        parameters = self._optimize_futures(parameters)
        waits = self._optimize_futures(wait_for) if wait_for else None
        task_run_id = uuid4()
        inputs: dict[str, set[Any]] = {
            k: collect_task_run_inputs_sync(v, future_cls=Future) for k, v in parameters.items()
        }
        if dependencies:
            inputs = {k: v.union(dependencies.get(k, set())) for k, v in inputs.items()}
        asset = {
            "task": task,
            "task_run_id": task_run_id,
            "task_inputs": inputs,
            "copy_to_child_ctx": True,
        }
        future = Client.submit(
            self.client,
            run_task,
            key=f"{funcname(task.fn)}-{task_run_id}",  # as Dask names it, the run's id
            pure=False,
            frozen=freeze({"task": task, "context": self.context(asset)}),
            task_run_id=task_run_id,
            wait_for=waits,
            return_type="state",
            parameters=parameters,
            dependencies=inputs,
        )
        return PrefectDaskFuture(wrapped_future=future, task_run_id=task_run_id)
