"""How a build's LocalCluster starts its workers: forked from a warm fork server."""

from __future__ import annotations

import os
import signal
import sys
import uuid

import pytest

from pamflow.flows import cluster

pytestmark = pytest.mark.integration


def test_start_method_is_the_fork_server_unless_spawn_is_asked(monkeypatch):
    monkeypatch.delenv(cluster.WORKER_START, raising=False)
    assert cluster.start_method() == "forkserver"
    monkeypatch.setenv(cluster.WORKER_START, " Spawn ")
    assert cluster.start_method() == "spawn"
    monkeypatch.setenv(cluster.WORKER_START, "fork")  # unsafe here: not offered
    with pytest.raises(ValueError, match="PAMFLOW_WORKER_START='fork'.*forkserver, spawn"):
        cluster.start_method()


TINY = {"num_examples": 2, "shard_size": 2, "queries_per_sequence": 2}


def _on_workers(workers: int, out: str, fn, spec: dict = TINY) -> tuple[str, list]:
    """Start a build's cluster of ``workers`` as ``start_cluster`` does, run ``fn`` on each
    worker, close it; (the scheduler's address, what each worker returned)."""
    from distributed import Client

    local = cluster.start_cluster(workers, "jnd", spec, out)
    try:
        with Client(local) as client:
            return local.scheduler_address, list(client.run(fn).values())
    finally:
        local.close()


def test_workers_fork_from_a_warm_server_without_torch(monkeypatch, tmp_path, demo_corpus):
    def _worker_state() -> dict:  # nested: pickled by value, as workers cannot import tests
        return {
            "parent": os.getppid(),
            "torch": "torch" in sys.modules,
            "prefect_engine": "prefect.task_engine" in sys.modules,
            "omp": os.environ.get("OMP_NUM_THREADS"),
            "malloc": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "marker": os.environ.get("PAMFLOW_TEST_MARKER"),
            "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
        }

    monkeypatch.setenv(cluster.WORKER_START, "forkserver")
    # set after the fork server may have started: it must still reach the workers
    monkeypatch.setenv("PAMFLOW_TEST_MARKER", "seen")
    spec = {"num_examples": 4, "shard_size": 4, "queries_per_sequence": 2}
    _, states = _on_workers(2, str(tmp_path / "out"), _worker_state, spec)
    assert len(states) == 2
    parents = {s["parent"] for s in states}
    # both workers are children of one fork server, not of this process (spawn's parent)
    assert len(parents) == 1 and os.getpid() not in parents
    for s in states:
        assert not s["torch"], "a build worker imported PyTorch"
        assert s["prefect_engine"], "the worker was not warmed"
        assert s["omp"] == "1" and int(s["malloc"]) == 1 << 30, states
        assert s["marker"] == "seen"
        assert s["sigint_ignored"]  # the command stops its workers; Ctrl-C does not


def test_spawned_workers_run_without_dask_s_profiler_slower_housekeeping_and_frozen_imports(
    tmp_path, demo_corpus, monkeypatch
):
    def _state(dask_worker) -> dict:  # client.run passes the worker by that name
        import gc

        import dask

        worker = dask_worker
        return {
            "profile": dask.config.get("distributed.worker.profile.enabled"),
            "tick": dask.config.get("distributed.admin.tick.interval"),
            "disk": worker.monitor.monitor_disk_io,
            "memory": worker.memory_manager.memory_monitor_interval,
            "malloc": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "frozen": gc.get_freeze_count() > 100_000,  # what the warm-up loaded
        }

    import dask
    import distributed  # noqa: F401  (its import loads Dask's distributed.* config)

    assert dask.config.get("distributed.worker.profile.enabled")  # Dask's default here
    monkeypatch.setenv(cluster.WORKER_START, "spawn")
    _, states = _on_workers(2, str(tmp_path / "out"), _state)
    assert (
        states
        == [
            {
                "profile": False,
                "tick": "1s",
                "disk": False,
                "memory": 0.5,
                "malloc": str(1 << 30),
                "frozen": True,
            }  # fmt: skip
        ]
        * 2
    )


def test_one_worker_runs_in_this_process_unfrozen(tmp_path, demo_corpus):
    import gc

    frozen = gc.get_freeze_count()
    address, (pid,) = _on_workers(1, str(tmp_path / "out"), os.getpid)
    assert address.startswith("inproc://")
    assert pid == os.getpid()  # no process to start, nothing pickled across
    assert gc.get_freeze_count() == frozen  # the caller's objects are not the warm-up's to freeze


def _certificates(path: str) -> int:
    with open(path, encoding="ascii") as f:
        return f.read().count("-----BEGIN CERTIFICATE-----")


def test_lean_clients_reach_a_plain_http_server_from_a_worker(prefect_server, tmp_path):
    """A task on a local worker sees the one-certificate CA file and its client still talks
    to the (http://) server; outside the block, and for https, the CA file is as it was.
    The task was submitted without hashing its closure and context."""
    import certifi
    from prefect import flow, task
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_URL, temporary_settings

    @task
    def seen() -> tuple[str | None, bool]:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:  # the API answers through it
            healthy = client.api_healthcheck() is None
        return PREFECT_API_SSL_CERT_FILE.value(), healthy

    keys = []

    @flow
    def probe() -> tuple[str | None, bool]:
        future = seen.submit()
        keys.append(future.wrapped_future.key)
        return future.result()

    assert prefect_server.startswith("http://")
    before = PREFECT_API_SSL_CERT_FILE.value()  # None, or $SSL_CERT_FILE's bundle
    with cluster.lean_prefect_clients():
        on_worker = cluster.on_runner(probe, cluster.task_runner(1))()
    path, healthy = on_worker
    assert healthy and path is not None
    # submitted unhashed (pure=False): Dask named the task by a random id, not a token
    (key,) = keys
    suffix = key.split("-", 1)[1]
    assert str(uuid.UUID(suffix)) == suffix, key  # a hash token would be 32 bare hex digits
    assert _certificates(path) == 1 and _certificates(certifi.where()) > 100
    assert PREFECT_API_SSL_CERT_FILE.value() == before  # restored
    own = str(tmp_path / "own.pem")  # a TLS connection would read it: kept
    https = {PREFECT_API_URL: "https://prefect.example/api", PREFECT_API_SSL_CERT_FILE: own}
    with temporary_settings(https), cluster.lean_prefect_clients():
        assert PREFECT_API_SSL_CERT_FILE.value() == own


def test_build_runner_sends_prefect_s_own_context_with_the_settings_dumped_once(prefect_server):
    """What BuildTaskRunner sends a worker is what Prefect's serialize_context makes, in a
    flow run and under changed settings, while the settings are dumped once per settings
    context (a stale dump would send the old settings)."""
    from prefect import flow, task
    from prefect.context import SettingsContext, serialize_context
    from prefect.settings import PREFECT_LOGGING_LEVEL, temporary_settings

    from pamflow.flows.runner import BuildTaskRunner

    runner = BuildTaskRunner()  # making a context needs no cluster

    @task
    def nothing() -> None:
        return None

    @flow
    def probe() -> list[dict]:
        asset = {"task": nothing, "task_run_id": uuid.uuid4(), "task_inputs": {},
                 "copy_to_child_ctx": True}  # fmt: skip
        made = [runner.context(asset), runner.context(asset), serialize_context(asset)]
        with temporary_settings({PREFECT_LOGGING_LEVEL: "ERROR"}):
            made += [runner.context(asset), serialize_context(asset)]
        return made

    first, again, theirs, changed, theirs_changed = probe()
    assert first == theirs and changed == theirs_changed
    assert first["flow_run_context"] and first["asset_context"]
    assert again["settings_context"] is first["settings_context"]  # dumped once
    assert changed["settings_context"] != first["settings_context"]
    assert isinstance(SettingsContext.get(), SettingsContext)  # put back


def test_a_worker_makes_the_flow_s_settings_once_and_anew_when_they_change(prefect_server):
    """Task runs on a worker see their flow's settings, a second flow's changed ones too,
    while equal dumps are validated once (Prefect validated every task run's again)."""
    import copy

    from prefect import flow, task
    from prefect.context import SettingsContext
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from pamflow.flows.runner import hydrated_settings

    @task
    def seen() -> int:
        return PREFECT_CLIENT_MAX_RETRIES.value()

    @flow
    def probe() -> list[int]:
        return [seen.submit().result() for _ in range(2)]

    got = []
    for retries in (3, 4):
        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: retries}):
            got += cluster.on_runner(probe, cluster.task_runner(1))()
            dumped = SettingsContext.get().serialize()
            made = hydrated_settings(dumped)
            assert hydrated_settings(copy.deepcopy(dumped)) is made  # an equal dump: kept
            assert made["settings"] == SettingsContext(**dumped).settings
            assert made["settings"].client.max_retries == retries
    assert got == [3, 3, 4, 4]


FREEZE_AT_EXIT = """
import atexit, gc
atexit.register(lambda: print("at exit", gc.get_freeze_count()))  # runs after pamflow's
from pamflow.flows.cluster import freeze_imports
now = freeze_imports()
made = [[i] for i in range(50_000)]  # made after the freeze (lists: tracked), alive at exit
print("now", now)
"""


def test_a_build_pickles_no_function_by_value(prefect_server, monkeypatch, tmp_path, demo_corpus):
    """What a build hands Dask to pickle holds no function pickled by value: its tasks' and
    its flow's decorated functions go by name (cloudpickle sent each by value, with a scan
    of sys.modules, in every submission) and the rows are made all the same."""
    from distributed.protocol import pickle as dask_pickle

    from pamflow.flows import build_dataset

    sent: list[bytes] = []
    dumps = dask_pickle.dumps

    def spy(x, *args, **kwargs):
        data = dumps(x, *args, **kwargs)
        sent.append(data)
        return data

    monkeypatch.setattr(dask_pickle, "dumps", spy)
    summary = build_dataset("jnd", TINY, str(tmp_path / "out"), workers=2)
    assert summary["rows"] == TINY["num_examples"]
    assert not [d for d in sent if b"_make_function" in d]
    tasks = [d for d in sent if b"build_dataset_flow" in d]  # each task's context: the flow's
    assert len(tasks) >= 1 + 1  # the shard and finalize, at least


def test_a_task_of_the_script_run_as_main_is_frozen_by_value(tmp_path):
    """A task in the script run as ``__main__`` goes by value (a worker's ``__main__`` is
    another module), as cloudpickle sends that script's functions."""
    import subprocess

    script = tmp_path / "script.py"
    script.write_text(
        "from prefect import task\n"
        "from pamflow.flows.runner import freeze\n"
        "@task\n"
        "def made() -> int:\n"
        "    return 1\n"
        "if __name__ == '__main__':\n"
        "    print(b'_make_function' in freeze(made), b'decorated' in freeze(made))\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=120).stdout  # fmt: skip
    assert out.split() == ["True", "False"]


def test_frozen_tasks_keep_their_options_and_other_functions_go_by_value():
    """A ``with_options`` copy of a module's task keeps its own options (only its function
    goes by name); a function no module holds is still pickled whole."""
    import pickle

    from pamflow.flows.build import output_visible_task
    from pamflow.flows.runner import freeze

    copy = output_visible_task.with_options(retries=5)
    back = pickle.loads(freeze({"task": copy, "f": lambda x: x + 1}))
    assert back["task"].retries == 5 and back["task"].fn is output_visible_task.fn
    assert back["f"](1) == 2


def test_freeze_imports_freezes_now_and_again_at_exit():
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", FREEZE_AT_EXIT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    counts = dict(line.rsplit(" ", 1) for line in done.stdout.splitlines())
    # the interpreter's last collections find everything frozen, what was made later too
    assert int(counts["at exit"]) > int(counts["now"]) + 49_000, counts
