"""`pamflow --help` and every subcommand's: a description, examples that parse, and a help
text stating the default of every option that has one (read from the real parser, so a new
option without help, or without its default, fails here)."""

from __future__ import annotations

import argparse
import shlex

import pytest

from pamflow.cli import main
from pamflow.cli.parser import HelpFormatter, build_parser


def _parsers() -> list[argparse.ArgumentParser]:
    """The tool's parser and every subcommand's, nested ones (``labels import``) included."""
    found = []
    todo = [build_parser()]
    while todo:
        parser = todo.pop()
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return found


PARSERS = {p.prog: p for p in _parsers()}


def _rendered(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help block of one option as ``--help`` prints it, on one line."""
    formatter = parser._get_formatter()
    return " ".join(formatter._format_action(action).split())


def _examples(parser: argparse.ArgumentParser) -> list[str]:
    return [
        line.strip()
        for line in (parser.epilog or "").splitlines()
        if line.strip().startswith("pamflow ")
    ]


def test_every_subcommand_is_there():
    expected = {"build", "train", "eval", "inspect", "index", "demo", "labels import"}
    assert {f"pamflow {name}" for name in expected} <= set(PARSERS)
    assert len(PARSERS) >= 14


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_help_has_a_description_and_examples(prog):
    parser = PARSERS[prog]
    assert parser.formatter_class is HelpFormatter
    assert parser.description and len(parser.description) >= 60, prog
    examples = _examples(parser)
    assert examples, f"{prog}: no example in its epilog"
    if prog != "pamflow":
        assert any(e.startswith(prog + " ") or e == prog for e in examples), examples
    text = parser.format_help()
    assert parser.description.splitlines()[0] in text and "examples:" in text


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_option_has_help_and_its_default(prog):
    parser = PARSERS[prog]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # the one-line summary in the list
                assert choice.help, f"{prog} {choice.dest}: no summary"
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help is not argparse.SUPPRESS, f"{prog} {name}: no help"
        if action.option_strings and not action.required and action.dest not in ("help",):
            if isinstance(action, argparse._VersionAction):
                continue
            shown = _rendered(parser, action)
            assert "default" in shown, f"{prog} {name}: help states no default: {shown!r}"
            assert "%(" not in shown and "None" not in shown, shown


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_example_parses(prog):
    for example in _examples(PARSERS[prog]):
        words = shlex.split(example, comments=True)
        cut = [i for i, w in enumerate(words) if w in (">", ">>", "|")]  # the shell's part
        argv = words[1 : cut[0] if cut else None]
        if "--help" in argv:
            continue
        args = build_parser().parse_args(argv)  # a usage error exits here
        assert args.command == argv[0]


def test_build_defaults_come_from_the_recipe_registry():
    from pamflow.datasets import get_recipe, recipe_names

    parser = PARSERS["pamflow build"]
    text = " ".join(parser.format_help().split())
    for field in ("num_examples", "shard_size", "seed", "sample_rate"):
        defaults = {get_recipe(r).Spec.model_fields[field].default for r in recipe_names()}
        if len(defaults) == 1:
            want = f"the recipe's ({defaults.pop()} for every recipe)"
        else:
            want = ", ".join(
                f"{r}: {get_recipe(r).Spec.model_fields[field].default}" for r in recipe_names()
            )
        option = "--" + field.replace("_", "-")
        (action,) = [a for a in parser._actions if option in a.option_strings]
        assert want in _rendered(parser, action), (option, want)
        assert action.default is None  # the spec's own default applies, not a copy of it
    for recipe in recipe_names():  # each recipe listed with its description
        assert get_recipe(recipe).description in text


def test_train_defaults_come_from_the_model_registry():
    import dataclasses

    from pamflow.models import registry

    text = " ".join(PARSERS["pamflow train"].format_help().split())
    for model in registry.names():
        assert registry.get(model).description in text
    epochs = {
        {f.name: f for f in dataclasses.fields(registry.get(m).train_config)}["epochs"].default
        for m in registry.names()
    }
    assert len(epochs) > 1 or f"else {epochs.pop()} for every model" in text


def test_tool_help_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--verbose" in out and "examples:" in out
    for prog in PARSERS:
        if prog.count(" ") == 1:  # a subcommand, listed with its summary
            assert prog.split()[1] in out


def test_a_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["build", "nosuch", "--out", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "invalid choice: 'nosuch'" in err and "pamflow build --help" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--verbose", "build", "jnd", "--out", "x"],
        ["build", "jnd", "--out", "x", "--verbose"],
        ["-v", "labels", "import", "d", "j", "--out", "x"],
        ["labels", "import", "d", "j", "--out", "x", "-v"],
    ],
)
def test_verbose_before_or_after_the_subcommand(argv):
    assert build_parser().parse_args(argv).verbose is True


def test_quiet_unless_asked():
    assert build_parser().parse_args(["build", "jnd", "--out", "x"]).verbose is False


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_the_parser_built_for_a_command_shows_what_the_full_one_shows():
    """main() builds the parser for the command it runs (train and enhance, which read the
    model registry, only listed otherwise): the tool's help, and each command's own help
    and parse, are the full parser's."""
    full = build_parser()
    for name, parser in _subcommands(full).items():
        built = build_parser(name)
        assert built.format_help() == full.format_help(), name
        assert _subcommands(built)[name].format_help() == parser.format_help(), name
    assert build_parser("").format_help() == full.format_help()
    light = _subcommands(build_parser("build"))["train"]
    assert light.format_help() != _subcommands(full)["train"].format_help()  # only listed


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["-v", "train", "dpam", "--data", "d", "--out", "r"], "train"),
        (["--verbose", "enhance", "m.pt", "in.wav", "out.wav"], "enhance"),
        (["build", "jnd", "--out", "train"], "build"),
        (["--version"], ""),
    ],
)
def test_main_builds_the_parser_for_the_command_it_runs(argv, command):
    from pamflow.cli import command_in

    assert command_in(argv) == command
    if command:
        args = build_parser(command).parse_args(argv)  # options after -v, as full parses
        assert args.command == command
        assert args.verbose is argv[0].startswith("-")


def test_a_build_command_does_not_import_torch():
    """`pamflow build` (and every command that does not train) parses without importing
    PyTorch: 2 s of CPU at each command's start. `pamflow train` still gets its models."""
    import subprocess
    import sys

    script = (
        "import contextlib, io, sys\n"
        "from pamflow.cli import main\n"
        "for argv in (['build', '--help'], ['--help'], ['train', '--help']):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    print(argv[0], 'torch' in sys.modules, 'models (and the recipes' in out.getvalue())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split("\n")[:3] == [
        "build False False",
        "--help False False",
        "train True True",
    ], done.stdout + done.stderr
