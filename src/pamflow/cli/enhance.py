"""``pamflow enhance``: adaptive EQ of files, folders or domain datasets against a trained
scorer (:mod:`pamflow.models.enhance_files`). Its options are read from
:class:`pamflow.models.enhance.EnhanceConfig` (one option a field, the field's description
and default), so the command and the library cannot disagree."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any

from pamflow.cli.base import command, console, err
from pamflow.cli.helptext import _escape, _subcommand


def _enhance_fields() -> list[dataclasses.Field[Any]]:
    from pamflow.models.enhance import EnhanceConfig

    return [f for f in dataclasses.fields(EnhanceConfig) if f.name != "init"]


ENHANCE_SUMMARY = "adaptive EQ of audio against a trained scorer (paper 004)"


def add_enhance_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """The ``enhance`` subcommand (called by :func:`pamflow.cli.parser.build_parser`)."""
    from pamflow.models.enhance import MIN_DROP, EnhanceConfig
    from pamflow.models.enhance_files import LSD_BOUND_DB

    s = _subcommand(
        sub,
        "enhance",
        ENHANCE_SUMMARY,
        "Learn a mask on the log-magnitude spectrogram of each input that lowers the score of\n"
        "the scorer in CHECKPOINT (0 = good domain, 1 = cheap), stays close to the input and\n"
        "smooth, and resynthesise it with the input's phase. IN is an audio file (OUT: the\n"
        "output file), a folder of audio files (OUT: a folder, same relative paths, .wav) or\n"
        "a domain dataset (OUT: a folder, <example_id>.wav). Outputs are float WAV at the\n"
        "scorer's rate. Prints each input's score before and after, the log-spectral\n"
        "distance (LSD) and mask size, and the share of inputs that moved towards good\n"
        "within --lsd-bound; --report writes a page with the scorer's saliency maps.",
        (
            "pamflow enhance runs/scorer/model.pt cheap.wav better.wav",
            "pamflow enhance runs/scorer/model.pt data/domain out/enhanced --split eval "
            "--domain cheap --init both --report out/enhance.html",
        ),
        parents,
    )
    s.add_argument("checkpoint", help="the model.pt of `pamflow train scorer`")
    s.add_argument("input", help="an audio file, a folder of audio files or a domain dataset")
    s.add_argument("output", help="the output file (for one input file) or folder")
    s.add_argument(
        "--init",
        choices=["block", "random", "both"],
        default=EnhanceConfig.init,
        help="block: the paper's smoothed rectangular blocks; random: per-cell noise (the "
        "paper's adversarial ablation); both: each in turn, into OUT/block and OUT/random",
    )
    hints = typing.get_type_hints(EnhanceConfig)
    for f in _enhance_fields():
        kind = hints[f.name]
        choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else None
        conv = str if choices else int if int in (kind, *typing.get_args(kind)) else float
        s.add_argument(
            "--" + f.name.replace("_", "-"),
            type=conv,
            choices=choices,
            default=f.default,
            help=_escape(f"{f.metadata['description']} (default: {_shown(f.default)})"),
        )
    s.add_argument(
        "--split",
        choices=["all", "eval"],
        default="all",
        help="for a dataset IN: all rows, or eval: the rows the scorer's training held out",
    )
    s.add_argument(
        "--domain", help="for a dataset IN: only the clips of this domain (default: every one)"
    )
    s.add_argument("--limit", type=int, help="enhance the first N inputs only (default: all)")
    s.add_argument(
        "--batch-size", type=int, default=8, help="inputs of one length optimised together"
    )
    s.add_argument(
        "--lsd-bound",
        type=float,
        default=LSD_BOUND_DB,
        help="the LSD (dB) an improved input may be from its input",
    )
    s.add_argument(
        "--min-drop",
        type=float,
        default=MIN_DROP,
        help="how much an improved input's score must fall",
    )
    s.add_argument("--json", help="also write every figure as JSON here (default: not written)")
    s.add_argument(
        "--report",
        help="write an HTML page: players, spectrograms, saliency maps and masks of the "
        "first --report-items inputs (default: no page)",
    )
    s.add_argument("--report-items", type=int, default=4, help="inputs shown on the page")


def _shown(value: Any) -> str:
    return "none: blocks tile the spectrogram" if value is None else str(value)


@command("enhance")
def cmd_enhance(args: argparse.Namespace) -> int:
    import json

    from pamflow.cli.model_commands import _check_checkpoint
    from pamflow.models.enhance import EnhanceConfig
    from pamflow.models.enhance_files import enhance_paths, format_rows

    _check_checkpoint(args.checkpoint)
    values = {f.name: getattr(args, f.name) for f in _enhance_fields()}
    inits = ["block", "random"] if args.init == "both" else [args.init]
    cfg = EnhanceConfig(init=inits[0], **values)  # type: ignore[arg-type]
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit: need 1 or more inputs, got {args.limit}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: need 1 or more, got {args.batch_size}")
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise ValueError(f"{args.output}: the output may not overwrite the input")

    def progress(done: int, total: int) -> None:
        err.print(f"enhanced {done}/{total}", highlight=False)

    result = enhance_paths(
        args.checkpoint,
        args.input,
        args.output,
        cfg,
        inits=inits,  # type: ignore[arg-type]
        split=args.split,
        domain=args.domain,
        limit=args.limit,
        batch_size=args.batch_size,
        lsd_bound_db=args.lsd_bound,
        min_drop=args.min_drop,
        keep=args.report_items if args.report else 0,
        progress=progress,
    )
    console.print(format_rows(result), markup=False, highlight=False)
    views = result.pop("views")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        console.print(f"figures written to {args.json}")
    if args.report:
        from pamflow.pipeline.enhance_page import render_enhance_page

        Path(args.report).write_text(render_enhance_page(result, views), encoding="utf-8")
        console.print(f"page written to {args.report}")
    return 0
