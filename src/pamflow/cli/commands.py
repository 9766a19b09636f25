"""The subcommands of ``pamflow``: one function each, registered by name in :data:`COMMANDS`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.table import Table

from pamflow.cli.base import COMMANDS, check_dataset, command, console, err


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
    sources = None
    if fam.needs_sources:  # the demo corpus, explicitly
        from pamflow.corpus import Sources

        sources = Sources.demo()
    params = fam.sample(np.random.default_rng(args.seed), args.strength, sources)
    y = fam.apply(audio, sr, params, sources)
    sf.write(args.output, y, sr, subtype="PCM_24")
    console.print(
        json.dumps({"family": fam.name, "strength": args.strength, "params": params.to_dict()})
    )
    return 0


@command("worker")
def cmd_worker(args: argparse.Namespace) -> int:
    from pamflow.flows.worker import plan_workers, run_workers

    plans = plan_workers(
        args.scheduler,
        nworkers=args.nworkers,
        gpus=args.gpus,
        name=args.name,
        warm=not args.no_warm,
        memory_limit=args.memory_limit,
    )
    for p in plans:
        err.print(f"worker {p.name}{' (GPU=1)' if p.gpu else ''} -> {args.scheduler}")
    return run_workers(plans)


# -- datasets ------------------------------------------------------------------------------
@command("build")
def cmd_build(args: argparse.Namespace) -> int:
    if not args.local and not args.cluster:  # workers fork from a server importing meanwhile
        from pamflow.flows.cluster import prestart

        prestart()
    from pamflow.flows.server import early

    # without PREFECT_API_URL, the temporary Prefect server starts while the spec is read
    # and the sources and the cluster are made, not after
    with early(needed=not args.local):
        return _build(args)


def _build(args: argparse.Namespace) -> int:
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pamflow.datasets.base import get_recipe
    from pamflow.datasets.spec import load_spec_file
    from pamflow.flows import settings
    from pamflow.flows.settings import absolute
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
    extra = settings.overrides(settings.SPEC_OVERRIDES)  # small machines, smoke tests
    if extra:
        err.print(f"{settings.SPEC_OVERRIDES.env} overrides the spec: {extra}")
        spec = recipe.parse({**spec.model_dump(mode="json"), **extra})
    args.out = absolute(args.out)  # workers and triggered flows run elsewhere
    spec = lib.prepare(recipe.name, spec, args.out)  # fails here, before any work, on a bad spec
    shards = len(lib.plan_shards(spec))
    if not args.retrain and _complete(args.out, shards):  # nothing to do: no cluster, no flow
        err.print(
            f"{args.out} is already complete ({spec.num_examples} rows in {shards} shards): "
            "nothing to build; use a new --out folder for another build"
        )
        _print_summary(lib.summarize(args.out))
        return 0
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rows"),
        TextColumn("{task.fields[shards]}/" + str(shards) + " shards"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    t0 = time.perf_counter()
    with progress:
        bar = progress.add_task(
            f"{recipe.name} -> {args.out}", total=spec.num_examples, shards=0, rate=""
        )
        done = {"shards": 0, "rows": 0, "built": 0}

        def on_shard(info: dict) -> None:
            done["shards"] += int(info.get("shard_done", True))  # a piece is part of one
            done["rows"] += info["rows"]
            if not info.get("skipped"):  # a shard kept from an earlier run took no time
                done["built"] += info["rows"]
            seconds = time.perf_counter() - t0
            rate = f"{done['built'] / seconds:.1f} ex/s" if done["built"] and seconds > 0 else ""
            progress.update(bar, completed=done["rows"], shards=done["shards"], rate=rate)

        data = spec.model_dump(mode="json")
        try:
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
                    retrain=args.retrain,
                )
        except BaseException:  # an error is one line: the bar goes, without a trace
            progress.live.transient = True
            progress.live.stop()
            progress.disable = True  # so that leaving `with` prints no blank line either
            raise
    if done["shards"] and not done["built"]:
        err.print(f"all {shards} shards were already complete: nothing was built")
    _print_summary(summary)
    if summary.get("quarantined_sources"):
        from pamflow.storage import Dataset

        found = Dataset.open(summary["path"], verify=False).info.get("quarantine", [])
        console.print(f"quarantined {len(found)} recording(s), not used (see dataset.json):")
        for q in found[:20]:
            console.print(f"  {q['id']}: {q['reason']}")
    return 0


def _complete(out: str, shards: int) -> bool:
    """Whether the dataset at ``out`` is finished: its dataset.json and all its shards."""
    from pamflow.storage import shard_done
    from pamflow.storage.dataset import DATASET_JSON
    from pamflow.storage.files import join, resolve

    fs, root = resolve(out)
    return bool(fs.exists(join(root, DATASET_JSON))) and all(
        shard_done(out, i) for i in range(shards)
    )


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

    check_dataset(args.dataset)
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


# -- demo ---------------------------------------------------------------------------------
@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from pamflow.flows.cluster import prestart
    from pamflow.flows.server import early

    out = Path(args.out)
    jnd = out / "jnd"
    build = not (jnd / "dataset.json").exists()
    if build:  # the build's fork server and temporary Prefect server start during the gallery
        prestart()
    with early(needed=build):
        return _demo(args, out, jnd, build)


def _demo(args: argparse.Namespace, out: Path, jnd: Path, build: bool) -> int:
    from pamflow.pipeline.demo import run_demo

    run_demo(out, console=console)
    if not build:
        console.print(f"{jnd} is already built; showing it")
    else:
        rc = _run(
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
    rc = _run(["inspect", str(jnd)])
    from pamflow.pipeline.demo import write_demo_report  # OUT/report.html and five lines

    summary = write_demo_report(out)
    console.rule("pamflow demo")
    console.print("\n".join(summary), markup=False, highlight=False, soft_wrap=True)
    return rc


def _run(argv: list[str]) -> int:
    """Another subcommand, as if typed."""
    from pamflow.cli.parser import build_parser

    args = build_parser(argv[0]).parse_args(argv)
    return COMMANDS[args.command](args)
