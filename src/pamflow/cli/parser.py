"""The ``pamflow`` command line: every subcommand, option, help text and default."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    from pamflow import __version__, perturbations
    from pamflow.datasets import get_recipe, recipe_names
    from pamflow.models import registry as model_registry

    evaluable = [n for n in recipe_names() if get_recipe(n).evaluated_on]
    p = argparse.ArgumentParser(
        prog="pamflow", description="pamflow: perceptual audio metric data and training flows."
    )
    p.add_argument("--version", action="version", version=f"pamflow {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("demo-corpus", help="make the embedded demo corpus in OUT")
    s.add_argument("out")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--force", action="store_true", help="make it again even if OUT holds one")

    s = sub.add_parser("index", help="index a folder (or fsspec URL) of audio into a manifest")
    s.add_argument("src")
    s.add_argument("--out", required=True, help="manifest Parquet file to write")
    s.add_argument("--kind", choices=["speech", "noise", "rir", "music", "instrument"])
    s.add_argument("--workers", type=int, default=4, help="threads reading files")

    s = sub.add_parser("perturbations", help="list the perturbation families")
    s.add_argument("--markdown", action="store_true", help="print docs/perturbations.md")

    s = sub.add_parser("perturb", help="apply one perturbation to an audio file")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument(
        "--name",
        required=True,
        choices=perturbations.names(),
        metavar="FAMILY",
        help="the family (see `pamflow perturbations`)",
    )
    s.add_argument("--strength", type=float, required=True)
    s.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("build", help="build a dataset (Prefect flow over Dask)")
    s.add_argument("recipe", choices=recipe_names(), help="the dataset recipe")
    s.add_argument("--out", required=True, help="dataset folder (or fsspec URL)")
    s.add_argument("--config", help="spec YAML; default: the recipe's defaults on the demo corpus")
    s.add_argument("--num-examples", type=int)
    s.add_argument("--shard-size", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--sample-rate", type=int)
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=2, help="local Dask worker processes")
    where.add_argument("--cluster", help="address of an existing Dask scheduler, tcp://host:port")
    s.add_argument(
        "--retrain",
        action="store_true",
        help="label the build's event so the training deployments of prefect.yaml fire",
    )
    where.add_argument(
        "--local", action="store_true", help="one plain process: no Prefect, no Dask"
    )

    s = sub.add_parser(
        "inspect", help="summarise a dataset, verify checksums, write an HTML report"
    )
    s.add_argument("dataset")
    s.add_argument("--report", help="write a self-contained HTML report here")
    s.add_argument("--no-verify", action="store_true", help="skip the sha256 check of shards")

    s = sub.add_parser("labels", help="import human labels")
    lsub = s.add_subparsers(dest="labels_command", required=True)
    li = lsub.add_parser(
        "import", help="judgments CSV (example_id, listener, answer) -> a new labelled dataset"
    )
    li.add_argument("dataset")
    li.add_argument("judgments")
    li.add_argument("--out", required=True, help="the new dataset (the old one is left as it is)")
    ld = lsub.add_parser(
        "import-dpam", help="a published DPAM JND list (ref_path, test_path, label[, type])"
    )
    ld.add_argument("list")
    ld.add_argument("--out", required=True)
    ld.add_argument(
        "--audio-root", help="folder the list's paths are relative to (default: the list's folder)"
    )
    ld.add_argument("--sample-rate", type=int, default=22050)

    s = sub.add_parser("train", help="train a metric (Prefect flow) on pamflow datasets")
    s.add_argument("model", choices=model_registry.names(), help="the metric to train")
    s.add_argument(
        "--data", nargs="+", required=True, help="dataset folders (recipes as the model needs)"
    )
    s.add_argument(
        "--out", required=True, help="run folder: checkpoints, metrics.jsonl, metrics.png"
    )
    s.add_argument(
        "--config", help="YAML of training fields (lr, batch_size, ..., model: {...}, tiny: true)"
    )
    s.add_argument(
        "--device", help="auto (default: CUDA where the training runs has it), cpu or cuda"
    )
    steps = s.add_mutually_exclusive_group()
    steps.add_argument("--epochs", type=int)
    steps.add_argument("--steps", type=int)
    s.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    s.add_argument(
        "--cluster", help="run the training task on this Dask scheduler (GPU workers for cuda)"
    )

    s = sub.add_parser(
        "eval", help="evaluate a checkpoint: JND accuracy/AUC, 2AFC, MOS, monotonicity"
    )
    s.add_argument("checkpoint")
    s.add_argument(
        "--data",
        nargs="*",
        default=[],
        help=f"{', '.join(evaluable)} datasets (recipes that declare evaluated_on)",
    )
    s.add_argument("--mos", help="CSV of reference path, test path, MOS")
    s.add_argument("--min-agreement", type=float, help="2AFC only on triplets with this agreement")
    s.add_argument("--device", default="cpu")
    s.add_argument(
        "--split",
        choices=["all", "eval"],
        default="all",
        help="eval: only the rows the training run held out",
    )
    s.add_argument("--json", help="also write the results as JSON here")

    s = sub.add_parser(
        "worker", help="start Dask workers for pamflow's tasks (DataLoader-safe, GPU resources)"
    )
    s.add_argument("scheduler", help="the Dask scheduler, tcp://host:port")
    s.add_argument("--nworkers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument(
        "--gpus",
        type=int,
        default=0,
        help="the first N workers each declare the Dask resource GPU=1 (default 0)",
    )
    s.add_argument("--name", help="worker name prefix (default pamflow-HOST-PID)")
    s.add_argument("--memory-limit", default="auto", help="per worker (default auto)")
    s.add_argument(
        "--no-warm", action="store_true", help="do not load the demo corpus when a worker starts"
    )

    s = sub.add_parser("demo", help="run the main job on the embedded demo corpus")
    s.add_argument("--out", default="out/demo")
    s.add_argument("--num-examples", type=int, default=200)
    s.add_argument("--workers", type=int, default=2)
    return p
