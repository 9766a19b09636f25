"""The subcommands about models: ``pamflow train`` and ``pamflow eval`` (registered in
:data:`pamflow.cli.base.COMMANDS`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pamflow.cli.base import check_dataset, command, console, err


# -- models --------------------------------------------------------------------------------
@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    from pamflow.flows.server import early

    with early():  # without PREFECT_API_URL, the temporary server starts meanwhile
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    import json

    from pamflow.cli.progress import training_progress
    from pamflow.flows import run_training, settings

    config = _read_config(args.config) if args.config else {}
    for key in ("device", "epochs"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.steps is not None:
        config["max_steps"] = args.steps
    extra = settings.overrides(settings.TRAIN_OVERRIDES)  # small machines, smoke tests
    if extra:
        err.print(f"{settings.TRAIN_OVERRIDES.env} overrides the training config: {extra}")
        config.update(extra)
    _check_training(args.model, config, args.data, args.cluster)
    out = Path(args.out)
    existed = "://" in args.out or out.exists()
    try:
        with training_progress(args.out, err):
            summary = run_training(
                args.model, args.data, args.out, config, resume=args.resume, cluster=args.cluster
            )
    except BaseException:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a failed start leaves no empty run folder behind
        raise
    console.print_json(json.dumps(summary, default=str))
    return 0


def _read_config(path: str) -> dict[str, Any]:
    """The fields of a training config YAML file; one line naming the file for anything
    else."""
    from pamflow.datasets.spec import read_fields

    return read_fields(
        path,
        "training config",
        noun="training config",
        defaults="train with the model's defaults",
        shape=" (lr: ..., epochs: ...)",
        error=ValueError,
    )


def _check_training(
    model: str, config: dict[str, Any], data: list[str], cluster: str | None
) -> None:
    """What fails before any training starts: the config's fields, the datasets, and a
    device this machine cannot train on (when the training runs here, not on a cluster)."""
    from pamflow.models import registry
    from pamflow.models.training.config import resolve_device
    from pamflow.storage import Dataset

    conf = registry.train_config(model, dict(config))
    for path in data:
        check_dataset(path)
    found = sorted({Dataset.open(path, verify=False).recipe for path in data})
    missing = [r for r in registry.get(model).recipes if r not in found]
    if missing:
        raise ValueError(
            f"{model} needs {', '.join(missing)} dataset(s) in --data; got {found} "
            "(see `pamflow train --help`)"
        )
    if cluster is None:
        try:
            resolve_device(conf.device)
        except RuntimeError as e:  # torch's word for a device string it cannot parse
            raise ValueError(f"device {conf.device!r}: not a torch device ({e})") from None


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from pamflow.datasets import get_recipe, recipe_names
    from pamflow.models.evaluate import evaluate, format_table

    if not args.data and not args.mos:
        evaluable = ", ".join(r for r in recipe_names() if get_recipe(r).evaluated_on)
        raise ValueError(
            f"eval needs rows to score: --data DATASET... ({evaluable} datasets) and/or "
            "--mos CSV (reference path, test path, MOS)"
        )
    _check_checkpoint(args.checkpoint)
    for path in args.data:
        check_dataset(path)
    try:
        results = evaluate(
            args.checkpoint,
            args.data,
            mos_csv=args.mos,
            min_agreement=args.min_agreement,
            device=args.device,
            split=args.split,
            figures=args.figures,
            baselines=not args.no_baselines,
        )
    except ValueError as e:
        if "weights_only" in str(e) or "Weights only" in str(e):  # torch's advice, not ours
            raise ValueError(
                f"{args.checkpoint}: not a pamflow checkpoint (a PyTorch file holding more "
                f"than tensors and plain values); {_CHECKPOINT_HINT}"
            ) from None
        raise
    console.print(format_table(results), markup=False)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        console.print(f"results written to {args.json}")
    return 0


_CHECKPOINT_HINT = "give the model.pt a `pamflow train` run wrote"

#: leading bytes of files that are not checkpoints -> what they are
_MAGIC = {
    b"RIFF": "a WAV audio file",
    b"fLaC": "a FLAC audio file",
    b"OggS": "an Ogg audio file",
    b"ID3": "an MP3 audio file",
    b"PAR1": "a Parquet file",
    b"\x80": "a Python pickle, not a PyTorch zip file",
}


def _check_checkpoint(path: str) -> None:
    """One line, before loading, for a path that cannot be a checkpoint: nothing there, a
    folder, or a file that is not a PyTorch zip file (saying what it is when it can)."""
    import zipfile

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if p.is_dir():
        found = p / "model.pt"
        hint = f"; did you mean {found}?" if found.exists() else f"; {_CHECKPOINT_HINT}"
        raise ValueError(f"{path} is a folder, not a checkpoint{hint}")
    if zipfile.is_zipfile(p):
        return
    with open(p, "rb") as f:
        head = f.read(512)
    what = next((w for m, w in _MAGIC.items() if head.startswith(m)), None)
    if what is None:
        try:
            head.decode("utf-8")
            what = "a text file" if head else "an empty file"
        except UnicodeDecodeError:
            what = "not a PyTorch file"
    raise ValueError(f"{path}: not a pamflow checkpoint ({what}); {_CHECKPOINT_HINT}")
