"""The ``pamflow`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(stderr=False)
err = Console(stderr=True)

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(
    name: str,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return deco


# -- corpus -------------------------------------------------------------------------------
@command("demo-corpus")
def cmd_demo_corpus(args: argparse.Namespace) -> int:
    from pamflow.corpus import MANIFEST_NAME, make_demo_corpus

    out = Path(args.out)
    if (out / MANIFEST_NAME).exists() and not args.force:
        console.print(f"{out} already holds a demo corpus (use --force to make it again)")
        return 0
    make_demo_corpus(out, seed=args.seed)
    _print_manifest_summary(out / MANIFEST_NAME)
    return 0


def _print_manifest_summary(manifest: Path) -> None:
    import pyarrow.parquet as pq

    rows = pq.read_table(manifest).to_pylist()
    table = Table(title=str(manifest))
    for col in ("kind", "files", "hours", "labels"):
        table.add_column(col)
    kinds = sorted({r["kind"] for r in rows})
    for k in kinds:
        rs = [r for r in rows if r["kind"] == k]
        labels = sorted({str(r.get("label")) for r in rs if r.get("label") is not None})
        table.add_row(
            k,
            str(len(rs)),
            f"{sum(r['duration_s'] for r in rs) / 3600:.3f}",
            ", ".join(labels[:8]) + (" ..." if len(labels) > 8 else ""),
        )
    console.print(table)


@command("index")
def cmd_index(args: argparse.Namespace) -> int:
    from pamflow.corpus import index_corpus, write_index

    result = index_corpus(args.src, kind=args.kind, workers=args.workers)
    paths = write_index(result, args.out)
    console.print(f"indexed {len(result.manifest)} files -> {paths[0]}")
    if result.quarantine:
        console.print(f"quarantined {len(result.quarantine)} files -> {paths[1]}")
        for q in result.quarantine[:20]:
            console.print(f"  [yellow]{q['id']}[/]: {q['reason']}")
        if len(result.quarantine) > 20:
            console.print(f"  ... and {len(result.quarantine) - 20} more")
    return 0


# -- perturbations ----------------------------------------------------------------------
@command("perturbations")
def cmd_perturbations(args: argparse.Namespace) -> int:
    from pamflow import perturbations

    if args.markdown:
        from pamflow.perturbations.docs import render

        sys.stdout.write(render())
        return 0
    table = Table(title="perturbation families (strength 0 -> 100)")
    for col in ("family", "category", "parameter", "rho=0", "rho=100", "mapping"):
        table.add_column(col)
    for fam in perturbations.families():
        table.add_row(
            fam.name,
            fam.category,
            f"{fam.parameter} ({fam.unit})",
            f"{fam.mild:g}",
            f"{fam.strong:g}",
            fam.mapping,
        )
    console.print(table)
    return 0


@command("perturb")
def cmd_perturb(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import soundfile as sf

    from pamflow import perturbations
    from pamflow.audio import load

    audio, sr = load(args.input)
    fam = perturbations.get(args.name)
    params = fam.sample(np.random.default_rng(args.seed), args.strength)
    y = fam.apply(audio, sr, params)
    sf.write(args.output, y, sr, subtype="PCM_24")
    console.print(
        json.dumps({"family": fam.name, "strength": args.strength, "params": params.to_dict()})
    )
    return 0


# -- datasets ------------------------------------------------------------------------------
@command("build")
def cmd_build(args: argparse.Namespace) -> int:
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pamflow.datasets.base import get_recipe
    from pamflow.datasets.spec import load_spec_file
    from pamflow.pipeline import build as lib

    recipe = get_recipe(args.recipe)
    data = load_spec_file(args.config) if args.config else {}
    spec = recipe.parse(
        data,
        num_examples=args.num_examples,
        shard_size=args.shard_size,
        seed=args.seed,
        sample_rate=args.sample_rate,
    )
    spec = lib.prepare(recipe.name, spec, args.out)  # fails here, before any work, on a bad spec
    shards = len(lib.plan_shards(spec))
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rows"),
        TextColumn("{task.fields[shards]}/" + str(shards) + " shards"),
        TextColumn("{task.fields[rate]:.1f} ex/s"),
        TimeElapsedColumn(),
        console=err,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    t0 = time.perf_counter()
    with progress:
        bar = progress.add_task(
            f"{recipe.name} -> {args.out}", total=spec.num_examples, shards=0, rate=0.0
        )
        done = {"shards": 0, "rows": 0}

        def on_shard(info: dict) -> None:
            done["shards"] += 1
            done["rows"] += info["rows"]
            rate = done["rows"] / max(time.perf_counter() - t0, 1e-9)
            progress.update(bar, completed=done["rows"], shards=done["shards"], rate=rate)

        data = spec.model_dump(mode="json")
        if args.local:
            summary = lib.build_local(recipe.name, data, args.out, progress=on_shard)
        else:
            from pamflow.flows import build_dataset

            summary = build_dataset(
                recipe.name,
                data,
                args.out,
                workers=args.workers,
                cluster=args.cluster,
                on_shard=on_shard,
            )
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    table = Table(title=f"{summary.get('recipe')} dataset: {summary.get('path')}")
    table.add_column("field")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        if k == "path":
            continue
        if isinstance(v, dict):
            v = "  ".join(f"{b}:{n}" for b, n in v.items())
        elif isinstance(v, float):
            v = f"{v:.3f}"
        table.add_row(k, str(v))
    console.print(table)


@command("inspect")
def cmd_inspect(args: argparse.Namespace) -> int:
    from pamflow.pipeline.inspect import inspect_dataset

    return inspect_dataset(
        args.dataset, console=console, report=args.report, verify=not args.no_verify
    )


@command("labels")
def cmd_labels(args: argparse.Namespace) -> int:
    from pamflow.datasets import importers as labels

    if args.labels_command == "import":
        summary = labels.import_judgments(args.dataset, args.judgments, args.out)
    else:
        summary = labels.import_dpam_list(
            args.list, args.out, audio_root=args.audio_root, sample_rate=args.sample_rate
        )
    _print_summary(summary)
    return 0


# -- models --------------------------------------------------------------------------------
@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    import json

    from pamflow.datasets.spec import load_spec_file
    from pamflow.flows import run_training

    config = load_spec_file(args.config) if args.config else {}
    for key in ("device", "epochs"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.steps is not None:
        config["max_steps"] = args.steps
    summary = run_training(
        args.model, args.data, args.out, config, resume=args.resume, cluster=args.cluster
    )
    console.print_json(json.dumps(summary, default=str))
    return 0


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from pamflow.models.evaluate import evaluate, format_table

    results = evaluate(
        args.checkpoint,
        args.data,
        mos_csv=args.mos,
        min_agreement=args.min_agreement,
        device=args.device,
        split=args.split,
    )
    console.print(format_table(results), markup=False)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        console.print(f"results written to {args.json}")
    return 0


# -- demo ---------------------------------------------------------------------------------
@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from pamflow.pipeline.demo import run_demo

    out = Path(args.out)
    run_demo(out, console=console)
    jnd = out / "jnd"
    if (jnd / "dataset.json").exists():
        console.print(f"{jnd} is already built; showing it")
    else:
        rc = main(
            [
                "build",
                "jnd",
                "--out",
                str(jnd),
                "--num-examples",
                str(args.num_examples),
                "--shard-size",
                "50",
                "--workers",
                str(args.workers),
            ]
        )
        if rc:
            return rc
    return main(["inspect", str(jnd)])


def build_parser() -> argparse.ArgumentParser:
    from pamflow import __version__, perturbations
    from pamflow.datasets import get_recipe, recipe_names
    from pamflow.models import registry as model_registry

    evaluable = [n for n in recipe_names() if get_recipe(n).evaluated_on]
    p = argparse.ArgumentParser(prog="pamflow", description=__doc__)
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
    s.add_argument("--device", help="cpu or cuda")
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

    s = sub.add_parser("demo", help="run the main job on the embedded demo corpus")
    s.add_argument("--out", default="out/demo")
    s.add_argument("--num-examples", type=int, default=200)
    s.add_argument("--workers", type=int, default=2)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        err.print(f"[red]error:[/] {e}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
