"""Help texts of the ``pamflow`` command line: the formatter, the parser class that keeps
usage errors to one line, and the helpers that read defaults and descriptions from the
registries (:mod:`pamflow.cli.parser` builds the parser with them)."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

VERBOSE_HELP = (
    "show Prefect's and Dask's logs and, on an error, the traceback (default: off: only "
    "progress, results, warnings and one line per error)"
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples keep their line breaks; an option's help gets its default
    (``default: off`` for a flag) unless the text states it or the option is required."""

    def __init__(self, prog: str) -> None:
        width = max(min(shutil.get_terminal_size().columns, 100) - 2, 60)
        super().__init__(prog, max_help_position=30, width=width)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or action.required
            or "default" in text
            or action.default is argparse.SUPPRESS
        ):
            return text
        if action.nargs == 0 and action.default is False:  # a flag
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def _text(value: Any) -> str:
    return "none" if value is None else str(value)


def _by_name(values: Mapping[str, Any], every: str) -> str:
    """``400 for every recipe`` when all agree, else ``jnd: 2000, nmr: 1000``."""
    shown = {name: _text(v) for name, v in values.items()}
    if len(set(shown.values())) == 1:
        return f"{next(iter(shown.values()))} for every {every}"
    return ", ".join(f"{name}: {v}" for name, v in shown.items())


def _escape(text: str) -> str:
    """Text from a registry, safe in an argparse help string (``%`` is a format there)."""
    return text.replace("%", "%%")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _listing(items: Mapping[str, str]) -> str:
    """``name  text`` lines, the texts aligned (and their own lines too)."""
    width = max(map(len, items)) + 2
    lines = []
    for name, text in items.items():
        first, *rest = text.split("\n")
        lines.append(f"  {name.ljust(width)}{first}")
        lines += [" " * (width + 2) + line.strip() for line in rest]
    return "\n".join(lines)


def _spec_option(name: str, recipes: list[str]) -> tuple[str, str]:
    """Help for the build option setting spec field ``name``: the field's description and
    each recipe's default, from the recipe registry."""
    from pamflow.datasets import get_recipe

    fields = {r: get_recipe(r).Spec.model_fields[name] for r in recipes}
    description = next(iter(fields.values())).description or name.replace("_", " ")
    defaults = _by_name({r: f.default for r, f in fields.items()}, "recipe")
    return (
        _escape(f"{description}; default: the --config spec's, else the recipe's ({defaults})"),
        name.upper(),
    )


def _train_field(models: list[str], name: str) -> tuple[str, str]:
    """A training config field's description and each model's default, from the model
    registry."""
    from pamflow.models import registry

    found = {
        m: {f.name: f for f in dataclasses.fields(registry.get(m).train_config)}[name]
        for m in models
    }
    first = next(iter(found.values()))
    defaults = _by_name({m: f.default for m, f in found.items()}, "model")
    return _escape(first.metadata.get("description", name)), defaults


def _subcommand(
    sub: Any,
    name: str,
    summary: str,
    description: str,
    examples: tuple[str, ...],
    parents: list[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=_examples(*examples),
        formatter_class=HelpFormatter,
        parents=parents,
    )
    return parser


def _deferred(
    sub: Any,
    name: str,
    summary: str,
    add: Callable[[Any, list[argparse.ArgumentParser]], None],
    parents: list[argparse.ArgumentParser],
    command: str | None,
) -> None:
    """Subcommand ``name`` added by ``add``, or only listed (``summary``) where the parser
    is built for another command (see :func:`pamflow.cli.parser.build_parser`)."""
    if command is None or command == name:
        add(sub, parents)
    else:
        sub.add_parser(name, help=summary)
