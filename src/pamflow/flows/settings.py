"""Settings the deployments of ``prefect.yaml`` read when a flow *runs* (never when it is
deployed): each from an environment variable of the process running the flow, else from a
Prefect Variable of the server, else a one-line error naming both.

==========================  ==========================  =====================================
environment variable        Prefect Variable            read by
==========================  ==========================  =====================================
``PAMFLOW_DATA_DIR``        ``pamflow_data_dir``        scheduled builds: where datasets go
``PAMFLOW_RUNS_DIR``        ``pamflow_runs_dir``        triggered trainings: where runs go
``DASK_SCHEDULER_ADDRESS``  ``dask_scheduler_address``  deployments with ``on_cluster: true``
``PAMFLOW_SPEC_OVERRIDES``  ``pamflow_spec_overrides``  optional: JSON merged into every
                                                        build's spec (deployments and
                                                        ``pamflow build``)
``PAMFLOW_TRAIN_OVERRIDES`` ``pamflow_train_overrides`` optional: JSON merged into every
                                                        training config (deployments and
                                                        ``pamflow train``)
``PAMFLOW_GPU_WAIT_S``      ``pamflow_gpu_wait_s``      optional: seconds a CUDA training
                                                        waits for a ``GPU`` worker (600)
==========================  ==========================  =====================================

The overrides exist for small machines and smoke tests: the same ``prefect.yaml`` and the
same commands, smaller (the test that runs the README's code blocks uses them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any


class SettingError(ValueError):
    """A setting a deployment needs is not set, or not readable; the message names it."""


@dataclass(frozen=True)
class Setting:
    env: str
    variable: str
    meaning: str


DATA_DIR = Setting("PAMFLOW_DATA_DIR", "pamflow_data_dir", "where scheduled builds write")
RUNS_DIR = Setting("PAMFLOW_RUNS_DIR", "pamflow_runs_dir", "where triggered trainings write")
SCHEDULER = Setting("DASK_SCHEDULER_ADDRESS", "dask_scheduler_address", "the Dask scheduler")
SPEC_OVERRIDES = Setting("PAMFLOW_SPEC_OVERRIDES", "pamflow_spec_overrides", "build spec overrides")
TRAIN_OVERRIDES = Setting(
    "PAMFLOW_TRAIN_OVERRIDES", "pamflow_train_overrides", "training config overrides"
)
GPU_WAIT_S = Setting("PAMFLOW_GPU_WAIT_S", "pamflow_gpu_wait_s", "seconds to wait for a GPU")
ALL = (DATA_DIR, RUNS_DIR, SCHEDULER, SPEC_OVERRIDES, TRAIN_OVERRIDES, GPU_WAIT_S)


def _variable(name: str) -> str | None:
    """A Prefect Variable's value, or None (no such variable, or no Prefect API to ask:
    without ``PREFECT_API_URL`` Prefect would start a temporary server just to say no)."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return None
    try:
        from prefect.variables import Variable

        value = Variable.get(name, default=None)
    except Exception:  # no server configured or reachable: the variable is simply not there
        return None
    return None if value is None else str(value)


def optional(setting: Setting) -> str | None:
    """The setting's value (environment first, then the Prefect Variable), or None."""
    value = os.environ.get(setting.env)
    if value:
        return value
    return _variable(setting.variable) or None


def required(setting: Setting) -> str:
    """The setting's value, or a :class:`SettingError` naming where to set it."""
    value = optional(setting)
    if not value:
        raise SettingError(
            f"{setting.env} is not set ({setting.meaning}): set it in the environment of the "
            f"Prefect worker, or as the Prefect Variable {setting.variable!r}"
        )
    return value


def overrides(setting: Setting) -> dict[str, Any]:
    """A JSON object setting (empty when unset); anything else is a one-line error."""
    text = optional(setting)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SettingError(f"{setting.env}: not JSON ({e.msg} at {e.pos}): {text[:80]!r}") from e
    if not isinstance(value, dict):
        raise SettingError(f"{setting.env}: expected a JSON object, got {type(value).__name__}")
    return value


def merged(setting: Setting, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the JSON object of ``setting`` merged on top, saying so in the log."""
    extra = overrides(setting)
    if extra:
        print(f"{setting.env} overrides the deployment's values: {extra}")
    return {**base, **extra}


def cluster_address(cluster: str | None, on_cluster: bool) -> str | None:
    """The Dask scheduler a deployment runs on: ``cluster`` if given, else with
    ``on_cluster`` the one in ``DASK_SCHEDULER_ADDRESS``, else none (a local cluster)."""
    if on_cluster and not cluster:
        return required(SCHEDULER)
    return cluster


def fresh_folder(root: str, prefix: str) -> str:
    """``ROOT/PREFIX-YYYYmmddTHHMMSSZ``: a new folder for each deployment run."""
    from datetime import UTC, datetime

    return f"{root.rstrip('/')}/{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def absolute(path: str) -> str:
    """``path`` as every process on every machine must read it: a URL as it is, a local
    path made absolute against this process's working directory."""
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


__all__ = [
    "ALL",
    "DATA_DIR",
    "GPU_WAIT_S",
    "RUNS_DIR",
    "SCHEDULER",
    "SPEC_OVERRIDES",
    "TRAIN_OVERRIDES",
    "Setting",
    "SettingError",
    "absolute",
    "optional",
    "overrides",
    "required",
]
