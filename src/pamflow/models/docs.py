"""Render ``docs/training.md`` from the model registry and the config dataclasses.

``python -m pamflow.models.docs > docs/training.md`` regenerates the page; a test fails when
the page and the code disagree, and when a training or architecture config field has no
description. A field's description is the ``description`` of its ``dataclasses.field``
metadata; a subclass that only changes a default (``batch_size: int = 32``) keeps the
description of the class it overrides.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
import typing
from typing import Any, Literal

from pamflow.datasets.docs import value  # a value as written in YAML, as for specs
from pamflow.models import registry
from pamflow.models.training.config import RESUMABLE_CHANGES, TrainConfig

COMMAND = "python -m pamflow.models.docs > docs/training.md"

HEADER = """\
# Training configs

Generated from the code by `python -m pamflow.models.docs`; do not edit by hand.

`pamflow train MODEL --data DATASET... --out RUN --config TRAIN.yaml` trains a model of the
registry (`pamflow/models/registry.py`). The YAML is a mapping of the fields below, any
subset of them (the others keep their defaults); `--epochs`, `--steps` (`max_steps`) and
`--device` override the file. Two more keys: `tiny: true` starts from the model's tiny
preset (small sizes, for smoke runs) instead of the defaults, and `model: {{...}}` sets
fields of the architecture config (the others keep theirs). Unknown fields are refused,
naming the known ones. The datasets given with `--data` are grouped by the recipe their
`dataset.json` records, and each stage reads those of its recipe (their spec fields:
[specs.md](specs.md)). A model of several stages trains them in order into `RUN/STAGE`,
each from the previous stage's `model.pt`; a stage whose `model.pt` exists is done and
skipped. A `stages:` mapping sets fields for the stages it names, over the rest of the
file and the command line (e.g. `stages: {{contrastive: {{epochs: 8}}}}`: 8 epochs for that
stage, the file's for the others); `model` cannot differ between stages.

A run writes `checkpoint.pt` (resumable), `model.pt` (when complete), `metrics.jsonl` and
`metrics.png`. `--resume` continues from `checkpoint.pt`; the config may then differ from
the checkpoint's in {resumable} only (and not in `epochs` with a cosine schedule).

| model | what it is | stages: the recipe each reads | training config | architecture |
|---|---|---|---|---|
"""


# -- one field ----------------------------------------------------------------------------


def _unoptional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return annotation, False


def type_name(annotation: Any) -> str:
    """The YAML-side type: ``float``, ``list of int``, ``[float, float]``, ``str or null``;
    a ``Literal``'s choices."""
    inner, optional = _unoptional(annotation)
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is Literal:
        name = "one of " + ", ".join(f"`{v}`" for v in args)
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        name = f"list of {type_name(args[0])}"
    elif origin is tuple:
        name = "[" + ", ".join(type_name(a) for a in args) + "]"
    elif dataclasses.is_dataclass(inner):
        name = f"mapping ({getattr(inner, '__name__', inner)})"
    else:
        name = getattr(inner, "__name__", str(inner))
    return f"{name} or null" if optional else name


def description(cls: type, name: str) -> str:
    """The description of field ``name`` of ``cls``, or of the nearest class above it that
    declares one."""
    for klass in cls.__mro__:
        if dataclasses.is_dataclass(klass):
            found = {f.name: f for f in dataclasses.fields(klass)}
            text = found[name].metadata.get("description") if name in found else None
            if text:
                return str(text)
    return ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


TABLE = "| field | type | default | meaning |\n|---|---|---|---|\n"


def rows(cls: type, names: list[str], overrides: dict[str, str] | None = None) -> str:
    """Table rows of the fields ``names`` of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = []
    for name in names:
        f = fields[name]
        if f.default is not dataclasses.MISSING:
            default = f"`{value(f.default)}`"
        elif dataclasses.is_dataclass(hints[name]):
            default = "its defaults"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{value(f.default_factory())}`"
        else:
            default = "required"
        meaning = description(cls, name) + (overrides or {}).get(name, "")
        out.append(f"| `{name}` | {type_name(hints[name])} | {default} | {_cell(meaning)} |\n")
    return "".join(out)


def own_fields(cls: type) -> list[str]:
    """The fields ``cls`` declares in its own body (new ones and changed defaults)."""
    own = cls.__dict__.get("__annotations__", {})
    return [f.name for f in dataclasses.fields(cls) if f.name in own]


# -- the page -----------------------------------------------------------------------------


def _doc(obj: Any) -> str:
    return " ".join((inspect.getdoc(obj) or "").split("\n\n")[0].split())


def _path(obj: Any) -> str:
    return f"`{obj.__module__.replace('.', '/')}.py`"


def _tiny(entry: registry.ModelEntry) -> str:
    """What ``tiny: true`` changes, as ``field: value`` items."""
    base, tiny = entry.train_config(), entry.train_config.tiny()
    items = [
        f"`{f.name}: {value(getattr(tiny, f.name))}`"
        for f in dataclasses.fields(tiny)
        if f.name != "model" and getattr(tiny, f.name) != getattr(base, f.name)
    ]
    items += [
        f"`model.{f.name}: {value(getattr(tiny.model, f.name))}`"
        for f in dataclasses.fields(tiny.model)
        if getattr(tiny.model, f.name) != getattr(base.model, f.name)
    ]
    return ", ".join(items)


def _model_section(entry: registry.ModelEntry) -> str:
    cfg, arch = entry.train_config, entry.config
    out = [f"\n## {entry.name}\n\n{entry.description[:1].upper()}{entry.description[1:]}. "]
    out.append(f"Architecture `{entry.architecture.__name__}` ({_path(entry.architecture)}); ")
    out.append(f"training {_path(cfg)} (its docstring says how it trains).\n\n")
    out.append("Stages, in order:\n\n")
    for i, stage in enumerate(entry.stages, 1):
        where = "`RUN`" if len(entry.stages) == 1 else f"`RUN/{stage.name}`"
        start = "" if i == 1 else f", from stage `{entry.stages[i - 2].name}`'s `model.pt`"
        out.append(
            f"{i}. `{stage.name}` reads [`{stage.recipe}`](specs.md#{stage.recipe}) "
            f"datasets, writes {where}{start}\n"
        )
    own = own_fields(cfg)
    changed = {
        n: f" (this model's default; [TrainConfig](#trainconfig)'s is "
        f"`{value(getattr(TrainConfig(), n))}`)"
        for n in own
        if any(n in own_fields(b) for b in cfg.__mro__[1:] if dataclasses.is_dataclass(b))
    }
    out.append(f"\n### {cfg.__name__}\n\n{_doc(cfg)} ")
    out.append("Its own fields and changed defaults; it has every field of ")
    out.append("[TrainConfig](#trainconfig) too.\n\n")
    out.append(TABLE + rows(cfg, own, changed))
    out.append(f"\n`tiny: true` sets {_tiny(entry)}.\n")
    out.append(f"\n### {arch.__name__}\n\nThe `model:` mapping ({_path(arch)}). {_doc(arch)}\n\n")
    out.append(TABLE + rows(arch, [f.name for f in dataclasses.fields(arch)]))
    return "".join(out)


def render() -> str:
    resumable = ", ".join(f"`{n}`" for n in sorted(RESUMABLE_CHANGES))
    out = [HEADER.format(resumable=resumable)]
    for name in registry.names():
        e = registry.get(name)
        stages = ", ".join(f"`{s.name}`: [`{s.recipe}`](specs.md#{s.recipe})" for s in e.stages)
        out.append(
            f"| [`{name}`](#{name}) | {_cell(e.description)} | {stages} "
            f"| [`{e.train_config.__name__}`](#{e.train_config.__name__.lower()}) "
            f"| [`{e.config.__name__}`](#{e.config.__name__.lower()}) |\n"
        )
    out.append(f"\n## Fields every model has\n\n### TrainConfig\n\nCode: {_path(TrainConfig)}. ")
    out.append("A model's own defaults are in its section below.\n\n")
    out.append(TABLE + rows(TrainConfig, [f.name for f in dataclasses.fields(TrainConfig)]))
    for name in registry.names():
        out.append(_model_section(registry.get(name)))
    return "".join(out)


def missing_descriptions(classes: list[type] | None = None) -> list[str]:
    """``Class.field`` of every field without a description; by default over the training
    and architecture configs of every registered model."""
    if classes is None:
        classes = [TrainConfig]
        for name in registry.names():
            classes += [registry.get(name).train_config, registry.get(name).config]
    return sorted(
        {
            f"{cls.__name__}.{f.name}"
            for cls in classes
            for f in dataclasses.fields(cls)
            if not description(cls, f.name).strip()
        }
    )


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render())
