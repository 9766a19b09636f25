"""The ``pamflow`` command line: every subcommand, option, help text and default.

Help is part of the interface: the tool and every subcommand have a description (what it
does, what it writes) and examples, and every option a help text that states its default.
Choices and defaults that come from a registry (recipes, models, perturbation families,
spec and training config fields) are read from it here, never copied. The help of every
subcommand is checked by ``tests/cli/test_help.py``.
"""

from __future__ import annotations

import argparse
from typing import Any

from pamflow.cli.enhance import ENHANCE_SUMMARY, add_enhance_parser
from pamflow.cli.experiments import add_parser as add_experiment_parser
from pamflow.cli.helptext import (
    VERBOSE_HELP,
    HelpFormatter,
    Parser,
    _deferred,
    _examples,
    _listing,
    _spec_option,
    _subcommand,
    _train_field,
)
from pamflow.cli.listen_commands import add_parser as add_listen_parser

TRAIN_SUMMARY = "train a metric (Prefect flow) on pamflow datasets"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``pamflow`` parser, every subcommand in full; with ``command`` (the subcommand
    about to run, "" for none), the ones whose help reads the model registry (``train``,
    ``enhance``: it imports PyTorch, 2 s of CPU) are in full only where they are
    ``command``, the others listed by their one-line summary. :func:`pamflow.cli.main`
    builds it so: a build's command does not import PyTorch."""
    from pamflow import __version__, perturbations
    from pamflow.datasets import get_recipe, recipe_names

    recipes = recipe_names()
    evaluable = [n for n in recipes if get_recipe(n).evaluated_on]
    p = Parser(
        prog="pamflow",
        description=(
            "pamflow: perceptual audio metric data and training flows.\n\n"
            "Builds labelled datasets of perturbed audio (Prefect flows whose tasks run on "
            "Dask),\ntrains perceptual metrics on them and evaluates the checkpoints. Quiet "
            "by default:\nprogress, results, warnings and one line per error; --verbose "
            "adds Prefect's and\nDask's logs and tracebacks."
        ),
        epilog=_examples(
            "pamflow demo --out out/demo            # the whole job on the demo corpus",
            "pamflow build jnd --out data/jnd --num-examples 2000",
            "pamflow train dpam --data data/jnd --out runs/dpam",
            "pamflow eval runs/dpam/model.pt --data data/jnd",
            "pamflow build --help                   # a subcommand's options and defaults",
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"pamflow {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    # --verbose after the subcommand too; SUPPRESS keeps the one given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
    )
    parents = [common]
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # -- corpus ---------------------------------------------------------------------------
    s = _subcommand(
        sub,
        "demo-corpus",
        "make the embedded demo corpus in OUT",
        "Make the embedded demo corpus in OUT, offline and deterministically: synthetic\n"
        "speech, noise, room impulse responses, music and instrument recordings (FLAC),\n"
        "their manifest (manifest.parquet) and a summary table. Builds use this corpus\n"
        "when a spec names no manifests.",
        (
            "pamflow demo-corpus corpus/demo",
            "pamflow demo-corpus corpus/demo --seed 1 --force",
        ),
        parents,
    )
    s.add_argument("out", help="the folder to write the corpus into")
    s.add_argument("--seed", type=int, default=0, help="seed of the synthetic recordings")
    s.add_argument("--force", action="store_true", help="make it again even if OUT holds one")

    s = _subcommand(
        sub,
        "index",
        "index a folder (or fsspec URL) of audio into a manifest",
        "Index every audio file under SRC (a folder or an fsspec URL) into a manifest: one\n"
        "Parquet row per usable file (id, path, kind, duration, checksum, measurements),\n"
        "written at --out, and the files set aside (unreadable, silent, too short...) in\n"
        "a quarantine table beside it (<stem>.quarantine.parquet). A spec's `manifests:`\n"
        "then builds datasets from the corpus.",
        (
            "pamflow index /data/speech --out corpus/speech.parquet --kind speech",
            "pamflow index s3://bucket/corpus --out corpus/all.parquet --workers 16",
        ),
        parents,
    )
    s.add_argument("src", help="the folder or fsspec URL holding the audio files")
    s.add_argument("--out", required=True, help="the manifest Parquet file to write")
    s.add_argument(
        "--kind",
        choices=["speech", "noise", "rir", "music", "instrument"],
        help="the kind of every file (default: each file's top folder under SRC)",
    )
    s.add_argument("--workers", type=int, default=4, help="threads reading files")

    # -- perturbations --------------------------------------------------------------------
    s = _subcommand(
        sub,
        "perturbations",
        "list the perturbation families",
        "List the perturbation families as a table: name, category, the parameter the\n"
        "strength drives and its value at strength 0 and 100. Writes nothing.",
        ("pamflow perturbations", "pamflow perturbations --markdown > perturbations.md"),
        parents,
    )
    s.add_argument(
        "--markdown", action="store_true", help="print docs/perturbations.md instead of a table"
    )

    s = _subcommand(
        sub,
        "perturb",
        "apply one perturbation to an audio file",
        "Apply one perturbation family at one strength (0: mildest, 100: strongest) to\n"
        "INPUT and write OUTPUT (24-bit WAV at INPUT's sample rate); print the family,\n"
        "strength and drawn parameters as JSON.",
        (
            "pamflow perturb clean.wav noisy.wav --name white_noise --strength 60",
            "pamflow perturb clean.wav coded.wav --name mp3 --strength 90 --seed 3",
        ),
        parents,
    )
    s.add_argument("input", help="the audio file to perturb")
    s.add_argument("output", help="the WAV file to write")
    s.add_argument(
        "--name",
        required=True,
        choices=perturbations.names(),
        metavar="FAMILY",
        help="the family (see `pamflow perturbations`)",
    )
    s.add_argument("--strength", type=float, required=True, help="0 (mildest) to 100 (strongest)")
    s.add_argument("--seed", type=int, default=0, help="seed of the parameters drawn")

    # -- datasets -------------------------------------------------------------------------
    s = _subcommand(
        sub,
        "build",
        "build a dataset (Prefect flow over Dask)",
        "Build a dataset of RECIPE into --out: Parquet shards of labelled audio rows, each\n"
        "written by a task of a Prefect flow on Dask workers (a local cluster of --workers\n"
        "processes, one worker in this process, or the scheduler at --cluster), then\n"
        "dataset.json last. Shows a progress bar, then a summary table. A folder holding\n"
        "a build of the same spec is resumed (complete shards are kept); one holding\n"
        "another spec, or other files, is refused.\n"
        "Without PREFECT_API_URL a temporary Prefect server records the run.\n\n"
        "recipes:\n" + _listing({r: get_recipe(r).description for r in recipes}),
        (
            "pamflow build jnd --out data/jnd --num-examples 2000 --workers 4",
            "pamflow build jnd --out data/jnd3000 --config configs/jnd-3000.yaml --local",
        ),
        parents,
    )
    s.add_argument(
        "recipe", choices=recipes, metavar="RECIPE", help="the dataset recipe (listed above)"
    )
    s.add_argument("--out", required=True, help="the dataset folder (or fsspec URL)")
    s.add_argument(
        "--config",
        help="a spec YAML file of the recipe's fields (default: the recipe's defaults, on the "
        "demo corpus)",
    )
    for field, kind in (
        ("num_examples", int),
        ("shard_size", int),
        ("seed", int),
        ("sample_rate", int),
    ):
        text, metavar = _spec_option(field, recipes)
        s.add_argument(f"--{field.replace('_', '-')}", type=kind, metavar=metavar, help=text)
    where = s.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=2,
        help="local Dask workers: processes; 1 runs in this process",
    )
    where.add_argument(
        "--cluster",
        help="the address of an existing Dask scheduler, tcp://host:port (default: a local "
        "cluster of --workers processes)",
    )
    where.add_argument(
        "--local", action="store_true", help="build in this one process: no Prefect, no Dask"
    )
    s.add_argument(
        "--retrain",
        action="store_true",
        help="label the build's event so the training deployments of prefect.yaml fire",
    )

    s = _subcommand(
        sub,
        "inspect",
        "summarise a dataset, verify checksums, write an HTML report",
        "Summarise a finished dataset (rows, shards, label balance, histograms) and check\n"
        "every shard's sha256 against dataset.json; with --report, also write a\n"
        "self-contained HTML page with listenable examples. A damaged dataset is one line\n"
        "and a non-zero exit.",
        ("pamflow inspect data/jnd", "pamflow inspect data/jnd --report jnd.html --no-verify"),
        parents,
    )
    s.add_argument("dataset", help="the dataset folder (or fsspec URL)")
    s.add_argument("--report", help="write a self-contained HTML report here (default: no report)")
    s.add_argument("--no-verify", action="store_true", help="skip the sha256 check of shards")

    s = _subcommand(
        sub,
        "labels",
        "import human labels",
        "Import human labels into a new dataset (the source dataset is left as it is).",
        (
            "pamflow labels import data/jnd votes.csv --out data/jnd-human",
            "pamflow labels import-dpam dpam/list.txt --out data/dpam-jnd",
        ),
        parents,
    )
    lsub = s.add_subparsers(dest="labels_command", required=True, metavar="SOURCE")
    li = _subcommand(
        lsub,
        "import",
        "judgments CSV (example_id, listener, answer) -> a new labelled dataset",
        "Write --out: DATASET with the labels of a listening test. Each row's label is the\n"
        "majority of its votes in the judgments CSV (example_id, listener, answer), with\n"
        "label_source = human and votes and agreement columns; rows without a vote keep\n"
        "their label. An example id the dataset lacks is an error.",
        ("pamflow labels import data/jnd votes.csv --out data/jnd-human",),
        parents,
    )
    li.add_argument("dataset", help="the dataset the judgments are about")
    li.add_argument("judgments", help="the CSV of votes: example_id, listener, answer")
    li.add_argument("--out", required=True, help="the new dataset (the old one is left as it is)")
    ld = _subcommand(
        lsub,
        "import-dpam",
        "a published DPAM JND list (ref_path, test_path, label[, type]) -> a jnd dataset",
        "Write --out: a jnd dataset (label_source = dpam-list) from a published DPAM JND\n"
        "list (ref_path, test_path, label[, type]), with the audio it names read and\n"
        "resampled to --sample-rate.",
        (
            "pamflow labels import-dpam dpam/list.txt --out data/dpam-jnd",
            "pamflow labels import-dpam list.txt --out data/dpam --audio-root /data/dpam",
        ),
        parents,
    )
    ld.add_argument("list", help="the DPAM list file")
    ld.add_argument("--out", required=True, help="the new dataset folder")
    ld.add_argument(
        "--audio-root", help="folder the list's paths are relative to (default: the list's folder)"
    )
    ld.add_argument("--sample-rate", type=int, default=22050, help="Hz of the dataset's audio")

    add_listen_parser(sub, parents)  # pamflow listen: in cli/listen_commands.py

    # -- models ---------------------------------------------------------------------------
    _deferred(sub, "train", TRAIN_SUMMARY, _add_train, parents, command)

    s = _subcommand(
        sub,
        "eval",
        "evaluate a checkpoint: JND accuracy/AUC, 2AFC, MOS, monotonicity",
        "Evaluate CHECKPOINT (a model.pt of `pamflow train`) on datasets (--data) and/or a\n"
        "MOS list (--mos): JND accuracy and AUC, monotonicity in perturbation strength,\n"
        "2AFC accuracy on triplets, MOS correlation. Prints a table; with --json, also\n"
        "writes the results.",
        (
            "pamflow eval runs/dpam/model.pt --data data/jnd",
            "pamflow eval runs/cdpam/model.pt --data data/jnd data/triplet --split eval "
            "--json results.json",
        ),
        parents,
    )
    s.add_argument("checkpoint", help="the model.pt a training run wrote")
    s.add_argument(
        "--data",
        nargs="+",
        default=[],
        help=f"{', '.join(evaluable)} datasets (recipes that declare evaluated_on) "
        "(default: none; give --data, --mos or both)",
    )
    s.add_argument(
        "--mos", help="a CSV of reference path, test path, MOS (default: no MOS evaluation)"
    )
    s.add_argument(
        "--min-agreement",
        type=float,
        help="2AFC only on triplets with at least this agreement (default: every triplet)",
    )
    s.add_argument("--device", default="cpu", help="the torch device to run the model on")
    s.add_argument(
        "--split",
        choices=["all", "eval"],
        default="all",
        help="all rows, or eval: only the rows the training run held out",
    )
    s.add_argument("--json", help="also write the results as JSON here (default: the table only)")
    s.add_argument(
        "--figures",
        help="a folder for the figures a model's own evaluation draws, e.g. codecnet's "
        "spectrograms (default: none drawn)",
    )
    s.add_argument(
        "--no-baselines",
        action="store_true",
        help="leave out the baselines (LSD, multi-resolution STFT, SI-SDR, PESQ where "
        "installed) computed beside each figure (default: computed; intervals always are)",
    )
    add_experiment_parser(sub, parents)  # pamflow experiment: in cli/experiments.py
    # pamflow enhance: in cli/enhance.py
    _deferred(sub, "enhance", ENHANCE_SUMMARY, add_enhance_parser, parents, command)

    s = _subcommand(
        sub,
        "worker",
        "start Dask workers for pamflow's tasks (DataLoader-safe, GPU resources)",
        "Start Dask worker processes connected to SCHEDULER, set up for pamflow's tasks\n"
        "(DataLoader-safe, one thread each, the demo corpus loaded), the first --gpus of\n"
        "them offering the resource GPU=1 that CUDA trainings ask for; wait until they stop.\n"
        "Ctrl-C stops them all. Dask's own logs (connecting, registering) need --verbose.",
        (
            "pamflow worker tcp://scheduler:8786 --nworkers 4",
            "pamflow worker tcp://scheduler:8786 --gpus 1 --memory-limit 32GB",
        ),
        parents,
    )
    s.add_argument("scheduler", help="the Dask scheduler, tcp://host:port")
    s.add_argument("--nworkers", type=int, default=1, help="worker processes")
    s.add_argument(
        "--gpus",
        type=int,
        default=0,
        help="the first N workers each declare the Dask resource GPU=1",
    )
    s.add_argument("--name", help="worker name prefix (default: pamflow-HOST-PID)")
    s.add_argument("--memory-limit", default="auto", help="memory limit of each worker")
    s.add_argument(
        "--no-warm", action="store_true", help="do not load the demo corpus when a worker starts"
    )

    s = _subcommand(
        sub,
        "demo",
        "run the main job on the embedded demo corpus",
        "Run the main job on the embedded demo corpus: a perturbation gallery (WAV files\n"
        "and a table) in OUT/gallery, a jnd dataset built by the flow in OUT/jnd, then its\n"
        "inspection. Run again, it shows what it built.",
        ("pamflow demo", "pamflow demo --out /tmp/demo --num-examples 100 --workers 1"),
        parents,
    )
    s.add_argument("--out", default="out/demo", help="the folder to write into")
    s.add_argument("--num-examples", type=int, default=200, help="rows of the jnd dataset")
    s.add_argument(
        "--workers",
        type=int,
        default=2,
        help="local Dask workers: processes; 1 runs in this process",
    )
    return p


def _add_train(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """The ``train`` subcommand: its models, their datasets and defaults from the model
    registry (which imports PyTorch)."""
    from pamflow.models import registry as model_registry

    models = model_registry.names()
    needs = {m: ", ".join(model_registry.get(m).recipes) for m in models}
    s = _subcommand(
        sub,
        "train",
        TRAIN_SUMMARY,
        "Train MODEL on the datasets given by --data in a Prefect flow (one task per stage)\n"
        "into the run folder --out: model.pt (the metric), checkpoint.pt (resumable),\n"
        "metrics.jsonl and metrics.png; then score it on the held-out rows and print a JSON\n"
        "summary. Without PREFECT_API_URL a temporary Prefect server records the run.\n\n"
        "models (and the recipes of the datasets each needs):\n"
        + _listing(
            {m: f"{model_registry.get(m).description}\ndatasets: {needs[m]}" for m in models}
        ),
        (
            "pamflow train dpam --data data/jnd3000 --out runs/dpam --config configs/dpam-cpu.yaml",
            "pamflow train cdpam --data data/contrastive data/jnd data/triplet "
            "--out runs/cdpam --device cuda",
        ),
        parents,
    )
    s.add_argument(
        "model", choices=models, metavar="MODEL", help="the metric to train (listed above)"
    )
    s.add_argument(
        "--data", nargs="+", required=True, help="dataset folders (recipes as the model needs)"
    )
    s.add_argument(
        "--out", required=True, help="the run folder: checkpoints, metrics.jsonl, metrics.png"
    )
    s.add_argument(
        "--config",
        help="a YAML file of training config fields (lr, batch_size, ..., model: {...}, "
        "tiny: true; stages: {STAGE: {fields}} sets fields for one stage, over the others) "
        "(default: the model's defaults)",
    )
    text, defaults = _train_field(models, "device")
    s.add_argument(
        "--device", help=f"{text} (default: the --config's, else the model's: {defaults})"
    )
    steps = s.add_mutually_exclusive_group()
    text, defaults = _train_field(models, "epochs")
    steps.add_argument(
        "--epochs", type=int, help=f"{text} (default: the --config's, else {defaults})"
    )
    text, defaults = _train_field(models, "max_steps")
    if defaults == "none for every model":
        defaults = "no limit: every epoch"
    steps.add_argument(
        "--steps",
        type=int,
        help="stop after this many optimiser steps; the schedule keeps its length (default: "
        f"the --config's max_steps, else {defaults})",
    )
    s.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    s.add_argument(
        "--cluster",
        help="run the training task on this Dask scheduler, GPU workers for cuda (default: "
        "in this process)",
    )
