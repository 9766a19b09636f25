"""``pamflow experiment``: the papers' experiments in miniature, their options (added to the
parser by :func:`add_parser`, as parser.py is full) and their command.

Today one: ``codec-loss``, the codec-approximation paper's autoencoder trained with the
losses A to D (:mod:`pamflow.models.codec_experiment`). Sizes shrink through
``PAMFLOW_TRAIN_OVERRIDES`` as a training's do: ``tiny: true`` (a two-step run on short
patches), ``max_steps`` and ``batch_size``.
"""

from __future__ import annotations

import argparse
from typing import Any

from pamflow.cli.base import command, console, err
from pamflow.cli.helptext import _subcommand

#: what ``tiny: true`` in the training overrides makes of the experiment (smoke runs)
TINY = {"steps": 2, "batch_size": 2, "patch": 4096, "patch_time": 4096, "eval_frame": 16384}


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """The ``experiment`` subcommand and its ``codec-loss`` experiment."""
    s = _subcommand(
        sub,
        "experiment",
        "run a paper's experiment in miniature (codec-loss)",
        "Run one of the papers' experiments at a size you choose and print its table.\n"
        "codec-loss: the codec-approximation paper's autoencoder (Table 2) on the demo\n"
        "corpus's music band-limited to 3 kHz, trained once per loss A to D.",
        ("pamflow experiment codec-loss --spectral runs/codecnet/model.pt --out runs/codec-loss",),
        parents,
    )
    esub = s.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    e = _subcommand(
        esub,
        "codec-loss",
        "the autoencoder trained with losses A (L1), B (+STFT), C and D (codec nets)",
        "Train Table 2's autoencoder (8 layers, 12 filters, kernels of 9) on the demo\n"
        "corpus's music at 16 kHz band-limited to 3 kHz, once per loss: A (L1), B (L1 +\n"
        "magnitude STFT), C (the spectral codec loss of --spectral), D (the time-domain\n"
        "codec loss of --time); same seed, steps and batches. Test: the recordings the codec\n"
        "networks held out. Prints SNR and log-spectral distance per model and writes\n"
        "--out/results.json and the first test frame of each model as WAV.",
        (
            "pamflow experiment codec-loss --spectral runs/codecnet/model.pt "
            "--time runs/codecnet-time/model.pt --out runs/codec-loss --steps 100",
        ),
        parents,
    )
    e.add_argument(
        "--spectral", help="a spectral codecnet model.pt: losses B and C (default: none)"
    )
    e.add_argument("--time", help="a time-domain codecnet model.pt: loss D (default: none)")
    e.add_argument("--out", required=True, help="folder for results.json and the WAVs")
    e.add_argument(
        "--losses",
        default="ABCD",
        help="the losses to train with, as letters; each needs its checkpoint",
    )
    e.add_argument("--steps", type=int, default=200, help="optimiser steps per model")
    e.add_argument("--batch-size", type=int, default=32, help="patches a step (Table 2: 32)")
    e.add_argument("--seed", type=int, default=0, help="model initialisation and patches")
    e.add_argument("--patch", type=int, default=66048, help="samples per patch for A, B and C")
    e.add_argument("--patch-time", type=int, default=16384, help="samples per patch for D")
    e.add_argument(
        "--eval-fraction",
        type=float,
        help="share of recordings held out (default: the checkpoints' eval_fraction)",
    )


@command("experiment")
def cmd_experiment(args: argparse.Namespace) -> int:
    from pamflow.flows import settings
    from pamflow.models.codec_experiment import (
        ExperimentConfig,
        format_results,
        run_codec_loss_experiment,
    )

    values: dict[str, Any] = dict(
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        patch=args.patch,
        patch_time=args.patch_time,
        losses=tuple(args.losses.upper()),
    )
    extra = settings.overrides(settings.TRAIN_OVERRIDES)  # small machines, smoke tests
    if extra:
        err.print(f"{settings.TRAIN_OVERRIDES.env} shrinks the experiment: {extra}")
        if extra.get("tiny"):
            values.update(TINY)
        for key, name in (("max_steps", "steps"), ("batch_size", "batch_size")):
            if key in extra:
                values[name] = int(extra[key])
    results = run_codec_loss_experiment(
        args.out,
        args.spectral,
        args.time,
        ExperimentConfig(**values),
        eval_fraction=args.eval_fraction,
        progress=err.print,
    )
    console.print(format_results(results), markup=False)
    console.print(f"results written to {args.out}/results.json")
    return 0
