"""User errors through the real CLI (in-process): one line on stderr, a non-zero exit, no
traceback unless --verbose, and nothing left behind."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from pamflow.cli import COMMANDS, QuietConsole, QuietConsoleHandler, console_logs, main

TINY = ["--num-examples", "8", "--shard-size", "4"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error(code: int, err: str, expected: int = 2) -> str:
    assert code == expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("error: "), err
    return lines[0]


# -- eval ------------------------------------------------------------------------------
def test_eval_of_a_text_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    line = _one_error(*_run(capsys, "eval", str(path), "--mos", "x.csv")[::2])
    assert f"{path}: not a pamflow checkpoint (a text file)" in line
    assert "model.pt" in line and "weights_only" not in line


def test_eval_of_a_wav_file(tmp_path, capsys):
    path = tmp_path / "tone.wav"
    sf.write(path, np.zeros(1600), 16000)
    line = _one_error(*_run(capsys, "eval", str(path), "--mos", "x.csv")[::2])
    assert "not a pamflow checkpoint (a WAV audio file)" in line
    assert "pop from empty list" not in line


def test_eval_of_a_torch_file_that_is_not_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "model.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)  # a pickled module, not weights
    line = _one_error(*_run(capsys, "eval", str(path), "--mos", "x.csv")[::2])
    assert "not a pamflow checkpoint" in line
    assert "weights_only" not in line and "Weights only" not in line and "trust" not in line


def test_eval_of_a_missing_file_or_a_folder(tmp_path, capsys):
    line = _one_error(*_run(capsys, "eval", str(tmp_path / "nope.pt"), "--mos", "x")[::2])
    assert line.endswith("nope.pt: no such checkpoint file")
    run = tmp_path / "run"
    run.mkdir()
    torch.save({}, run / "model.pt")
    line = _one_error(*_run(capsys, "eval", str(run), "--mos", "x.csv")[::2])
    assert "is a folder, not a checkpoint; did you mean" in line


def test_eval_without_data_says_what_it_needs(tmp_path, capsys):
    code, out, err = _run(capsys, "eval", str(tmp_path / "model.pt"))
    line = _one_error(code, err)
    assert "--data" in line and "--mos" in line and "jnd" in line
    assert out == ""  # no empty table


# -- inspect ----------------------------------------------------------------------------
def test_inspect_of_a_missing_folder(tmp_path, capsys):
    line = _one_error(*_run(capsys, "inspect", str(tmp_path / "nowhere"))[::2])
    assert line == f"error: {tmp_path / 'nowhere'}: no such dataset folder"


def test_inspect_of_a_folder_without_a_dataset(tmp_path, capsys):
    line = _one_error(*_run(capsys, "inspect", str(tmp_path))[::2])
    assert "dataset.json: not found" in line and "holds no pamflow dataset" in line
    assert "finalize_dataset" not in line  # pamflow's insides, not the user's business


def test_inspect_of_an_unfinished_or_running_build(tmp_path, capsys, demo_corpus):
    from pamflow.pipeline import build
    from pamflow.storage.files import tmp_name

    out = str(tmp_path / "ds")
    build.prepare("jnd", {"num_examples": 8, "shard_size": 4}, out)  # claimed, nothing built
    line = _one_error(*_run(capsys, "inspect", out)[::2])
    assert "the jnd build there is unfinished (0 of 2 shards written)" in line
    assert "run the same `pamflow build` command" in line
    shards = Path(out) / "shards"
    shards.mkdir(exist_ok=True)
    part = shards / tmp_name(str(shards / "part-00000.parquet")).rpartition("/")[2]
    part.write_bytes(b"being written")  # a temporary file of a live writer (this process)
    line = _one_error(*_run(capsys, "inspect", out)[::2])
    assert "a jnd build is in progress there (0 of 2 shards written so far)" in line


# -- train ------------------------------------------------------------------------------
def test_train_config_that_is_missing(tmp_path, capsys):
    code, _, err = _run(
        capsys, "train", "noresqa", "--config", "missing.yaml", "--data", "x", "--out",
        str(tmp_path / "run"),
    )  # fmt: skip
    line = _one_error(code, err)
    assert line == "error: missing.yaml: cannot read the training config: No such file or directory"
    assert "spec" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_train_on_cuda_without_cuda(jnd_local, tmp_path, capsys):
    path, _ = jnd_local
    run = tmp_path / "run"
    code, _, err = _run(
        capsys, "train", "dpam", "--data", path, "--out", str(run), "--device", "cuda"
    )
    line = _one_error(code, err)
    assert "device 'cuda': torch sees no CUDA device" in line
    assert not run.exists()  # refused before a run folder, or a Prefect server, was made


def test_train_on_the_wrong_datasets(jnd_local, tmp_path, capsys):
    path, _ = jnd_local
    line = _one_error(
        *_run(capsys, "train", "noresqa", "--data", path, "--out", str(tmp_path / "r"))[::2]
    )
    assert "noresqa needs nmr dataset(s) in --data; got ['jnd']" in line


# -- build --------------------------------------------------------------------------------
@pytest.fixture
def wide(monkeypatch):
    """stderr as wide as the progress bar needs (not cut at 80 columns)."""
    from pamflow.cli import commands

    monkeypatch.setattr(commands.err, "_width", 400)
    monkeypatch.setattr(commands.err, "_height", 25)


def test_a_no_op_rebuild_says_it_was_complete(tmp_path, capsys, demo_corpus, wide):
    out = str(tmp_path / "ds")
    code, _, err = _run(capsys, "build", "jnd", "--local", "--out", out, *TINY)
    assert code == 0, err
    assert "8/8 rows" in err and "ex/s" in err
    # the same command, on the flow this time: nothing to do, so no server, no cluster
    code, table, err = _run(capsys, "build", "jnd", "--out", out, *TINY)
    assert code == 0, err
    assert err.strip() == (
        f"{out} is already complete (8 rows in 2 shards): nothing to build; use a new "
        "--out folder for another build"
    )
    assert "ex/s" not in err and "jnd dataset" in table and "rows" in table


def test_a_resumed_build_rates_only_what_it_built(tmp_path, capsys, demo_corpus, wide):
    out = tmp_path / "ds"
    assert _run(capsys, "build", "jnd", "--local", "--out", str(out), *TINY)[0] == 0
    (out / "dataset.json").unlink()  # stopped before the end: every shard is there
    code, _, err = _run(capsys, "build", "jnd", "--local", "--out", str(out), *TINY)
    assert code == 0, err
    assert "all 2 shards were already complete: nothing was built" in err
    assert "8/8 rows" in err and "2/2 shards" in err and "ex/s" not in err


# -- any error ----------------------------------------------------------------------------
def _boom(args):
    raise RuntimeError("a bug\nover two lines")


def test_an_unexpected_error_is_one_line_and_verbose_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setitem(COMMANDS, "perturbations", _boom)
    line = _one_error(*_run(capsys, "perturbations")[::2], expected=1)
    assert line.startswith("error: RuntimeError: a bug over two lines")
    assert "--verbose" in line
    code, _, err = _run(capsys, "perturbations", "--verbose")
    assert code == 1 and "Traceback" in err and "RuntimeError: a bug" in err
    assert err.strip().splitlines()[-1] == "error: RuntimeError: a bug over two lines"


def test_a_user_error_with_verbose_shows_the_traceback(tmp_path, capsys):
    code, _, err = _run(capsys, "--verbose", "inspect", str(tmp_path / "nowhere"))
    assert code == 2 and "Traceback" in err
    assert err.strip().splitlines()[-1].endswith("nowhere: no such dataset folder")


# -- the quiet console ---------------------------------------------------------------------
def _record(name: str, level: int, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("inside the flow")
        except ValueError:
            import sys

            info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, "message", None, info)


@pytest.mark.parametrize(
    ("name", "level", "shown"),
    [
        ("prefect", logging.INFO, False),  # Starting temporary server...
        ("prefect.flow_runs", logging.INFO, False),
        ("prefect.flow_runs", logging.ERROR, False),  # the run's traceback
        ("prefect.task_runs", logging.ERROR, False),
        ("distributed.scheduler", logging.INFO, False),
        ("distributed.nanny", logging.WARNING, False),  # Worker process still alive...
        ("distributed.worker.state_machine", logging.WARNING, False),
        ("EventsWorker", logging.WARNING, False),  # Still processing items...
        # the temporary server's services, stopped mid-write by a Ctrl-C
        ("prefect.server.services.task_run_recorder", logging.ERROR, False),
        ("prefect.server.services.task_run_recorder", logging.CRITICAL, True),
        ("distributed.nanny", logging.ERROR, True),
        ("prefect", logging.WARNING, True),
        ("some.library", logging.WARNING, True),
        ("some.library", logging.INFO, False),
    ],
)
def test_the_quiet_console_filter(name, level, shown):
    assert QuietConsole().filter(_record(name, level)) is shown


def test_the_quiet_handler_prints_no_flow_traceback(capsys):
    handler = QuietConsoleHandler(stream=None)
    from prefect.logging.handlers import PrefectConsoleHandler

    assert isinstance(handler, PrefectConsoleHandler)
    handler.handle(_record("prefect.flow_runs", logging.ERROR, exc=True))
    handler.handle(_record("prefect", logging.INFO))
    handler.handle(_record("prefect", logging.WARNING))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "inside the flow" not in err
    assert err.count("message") == 1  # the warning only


def test_console_logs_set_and_restore_the_environment(monkeypatch):
    for key in ("PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS", "DASK_LOGGING__DISTRIBUTED"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
    before = dict(os.environ)
    with console_logs(verbose=False):
        assert os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS"].endswith("QuietConsoleHandler")
        assert os.environ["DASK_LOGGING__DISTRIBUTED"] == "error"
        assert logging.getLogger("distributed").level == logging.ERROR
        assert os.environ["PREFECT_LOGGING_LEVEL"] == "WARNING"  # levels left alone
    assert dict(os.environ) == before
    with console_logs(verbose=True):
        assert os.environ["PREFECT_LOGGING_LEVEL"] == "INFO"
        assert "PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS" not in os.environ
    assert dict(os.environ) == before
    assert json.dumps(before)  # plain strings
