"""Fault injection, interrupts: one Ctrl-C during a Prefect/Dask build, one SIGTERM during
training. Each stops within seconds with one line and exit 128 + signal, leaves no process
it started (Dask workers, the temporary Prefect server), keeps what was finished, and the
same command resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from pamflow.storage import Dataset

pytestmark = pytest.mark.integration
PAMFLOW = os.path.join(os.path.dirname(sys.executable), "pamflow")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)  # as a user runs it: pamflow starts its own server
    return env


def _wait_for(what, timeout: float, proc: subprocess.Popen) -> None:
    end = time.monotonic() + timeout
    while not what():
        if proc.poll() is not None:
            raise AssertionError(f"finished before it could be interrupted: {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("never got going")
        time.sleep(0.2)


def _interrupt(proc: subprocess.Popen, sig: int, *, group: bool) -> tuple[float, str, list]:
    """Send ``sig`` (to the process group, as Ctrl-C does, or to the process alone, as a
    process manager does); return (seconds to exit, stderr, the children it had)."""
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "the command had started no process"
    t0 = time.monotonic()
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    return time.monotonic() - t0, err, children


def _gone(children: list, timeout: float = 5.0) -> list:
    _, alive = psutil.wait_procs(children, timeout=timeout)
    return [f"{p.pid} {p.name()}" for p in alive]


def _left_in_session(sid: int, timeout: float = 5.0) -> list:
    """Processes still in the command's session (it started one): children it started
    after the interrupt was sent (a Dask nanny restarting its worker) included."""
    end = time.monotonic() + timeout
    while True:
        left = []
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{p.pid} {' '.join(p.cmdline())[:80]}")
            except (OSError, psutil.Error):
                pass
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.2)


def test_one_ctrl_c_stops_a_flow_build_which_the_same_command_resumes(tmp_path, demo_corpus):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "families: [white_noise, eq]\nnum_examples: 2000\nshard_size: 20\nclip_seconds: 1.0\n"
        "queries_per_sequence: 5\nseed: 4\n"
    )
    out = tmp_path / "out"
    cmd = [PAMFLOW, "build", "jnd", "--config", str(spec), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), start_new_session=True)  # fmt: skip
    _wait_for(lambda: len(list((out / "shards").glob("part-*.parquet"))) >= 2, 240, proc)
    seconds, err, children = _interrupt(proc, signal.SIGINT, group=True)
    assert proc.returncode == 130, err
    assert seconds < 15, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1 and "run the same command again to resume" in lines[0], err
    assert not _gone(children), "processes left behind"
    assert not _left_in_session(proc.pid), "processes left behind"
    assert not (out / "dataset.json").exists()
    kept = {p.name: p.read_bytes() for p in (out / "shards").glob("part-*.parquet")}
    assert kept

    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    ds = Dataset.open(str(out))
    assert ds.num_rows == 2000 and ds.verify().ok
    ids = ds.to_table(["index"]).column("index").to_pylist()
    assert sorted(ids) == list(range(2000))  # nothing lost, nothing twice
    for name, data in kept.items():  # finished shards were kept, not rewritten
        assert (out / "shards" / name).read_bytes() == data


def test_sigterm_stops_training_and_its_temporary_server(tmp_path, jnd_local):
    data, _ = jnd_local
    config = tmp_path / "train.yaml"
    config.write_text("tiny: true\nbatch_size: 4\n")
    run = tmp_path / "run"
    cmd = [PAMFLOW, "train", "dpam", "--data", data, "--out", str(run), "--config", str(config),
           "--device", "cpu", "--epochs", "100000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), start_new_session=True)  # fmt: skip
    _wait_for(lambda: (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").stat().st_size,
              240, proc)  # fmt: skip
    servers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "prefect" in " ".join(p.cmdline()) or "uvicorn" in " ".join(p.cmdline())]  # fmt: skip
    seconds, err, children = _interrupt(proc, signal.SIGTERM, group=False)
    assert proc.returncode == 143, err
    assert seconds < 15, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in err, err
    assert sum(line.startswith("interrupted:") for line in err.splitlines()) == 1, err
    assert servers, "training started no temporary Prefect server"
    assert not _gone(children), "processes left behind"
    assert (run / "metrics.jsonl").read_text().strip()  # what was measured is kept
    resumed = subprocess.run(
        [*cmd[:-1], "1", "--resume"], capture_output=True, text=True, env=_env(), timeout=600
    )
    # the run goes on from its checkpoint: it was far past epoch 1, so nothing is left to do;
    # without a checkpoint (stopped in the first epoch) it would say it starts fresh
    assert resumed.returncode == 0, resumed.stderr
