"""Render ``docs/specs.md`` from the recipes' spec models (one source of truth).

``python -m pamflow.datasets.docs > docs/specs.md`` regenerates the page; a test fails when
the page and the code disagree, and when a spec field (nested ones included) has no
description. Each field's row comes from its pydantic ``Field``: the type, the default, the
bounds (``ge``/``gt``/``le``/``lt``, lengths), ``Literal`` choices and the description;
choices that a validator takes from a registry (perturbation families, MP3 bitrates, NMR
distortions) are added from that registry (:func:`registry_choices`).
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pamflow.datasets.base import Recipe, get_recipe, recipe_names
from pamflow.datasets.spec import BaseSpec

COMMAND = "python -m pamflow.datasets.docs > docs/specs.md"

HEADER = """\
# Dataset specs

Generated from the code by `python -m pamflow.datasets.docs`; do not edit by hand.

A spec says what one dataset holds: `pamflow build RECIPE --config SPEC.yaml` reads it as a
YAML mapping of the fields below. Any subset will do (a field left out takes its default;
without `--config` every field does); `--num-examples`, `--shard-size`, `--seed` and
`--sample-rate` override the file. A nested field is a mapping
(`strength: {low: 10, high: 60}`). Specs are checked before any work starts: unknown fields
are refused, a boolean is never taken for a number, and every error names the field; then
the spec is checked against its recordings (the manifests hold the kinds the recipe needs,
long enough for `clip_seconds`). Row `i` of a dataset depends only on the spec and `i`.

*allowed* comes from the field's constraints: `[a, b]` includes both ends, `(a, b]`
excludes `a`; a list of values is the choices. Families are described in
[perturbations.md](perturbations.md); the models that train on each recipe in
[training.md](training.md).

| recipe | spec | what a row is |
|---|---|---|
"""


# -- what the page says about one field ---------------------------------------------------


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _unoptional(annotation: Any) -> tuple[Any, bool]:
    """``(annotation without None, whether None is allowed)``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in _args(annotation) if a is not type(None)]
        if len(rest) < len(_args(annotation)):
            return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (a nested mapping such as a range), or None."""
    inner, _ = _unoptional(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def type_name(annotation: Any) -> str:
    """The YAML-side type of an annotation: ``float``, ``list of str``, ``str or null``..."""
    inner, optional = _unoptional(annotation)
    origin = typing.get_origin(inner)
    if origin is Literal:
        kinds = sorted({type(v).__name__ for v in _args(inner)})
        name = " or ".join(kinds)
    elif origin is list:
        name = f"list of {type_name(_args(inner)[0])}"
    elif isinstance(inner, type) and issubclass(inner, BaseModel):
        name = f"mapping ({inner.__name__})"
    else:
        name = getattr(inner, "__name__", str(inner))
    return f"{name} or null" if optional else name


def value(v: Any) -> str:
    """A value as it would be written in a spec file (YAML flow style)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, BaseModel):
        return "{" + ", ".join(f"{k}: {value(x)}" for k, x in v.model_dump().items()) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return str(v)


def _default(info: FieldInfo) -> Any:
    return info.get_default(call_default_factory=True)


def _number(v: float) -> str:
    """``1``, ``0.5``, ``10000000`` (never ``1e+07``)."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def bounds(info: FieldInfo) -> str:
    """``[0, 100]``, ``(0, 60]``, ``>= 1``, ``length >= 1``... from the field's metadata
    (pydantic's ``annotated_types`` constraints, read by their attribute names)."""
    found = {
        attr: getattr(m, attr)
        for m in info.metadata
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length")
        if getattr(m, attr, None) is not None
    }
    n = {k: _number(v) for k, v in found.items()}
    lo = f"[{n['ge']}" if "ge" in n else f"({n['gt']}" if "gt" in n else ""
    hi = f"{n['le']}]" if "le" in n else f"{n['lt']})" if "lt" in n else ""
    parts = []
    if lo and hi:
        parts.append(f"{lo}, {hi}")
    elif lo:
        parts.append((">= " if lo[0] == "[" else "> ") + lo[1:])
    elif hi:
        parts.append(("<= " if hi[-1] == "]" else "< ") + hi[:-1])
    parts += [f"length >= {found['min_length']}"] if "min_length" in found else []
    parts += [f"length <= {found['max_length']}"] if "max_length" in found else []
    return ", ".join(parts)


def choices(annotation: Any) -> str:
    """The ``Literal`` choices of a field (of its items, for a list)."""
    inner, _ = _unoptional(annotation)
    if typing.get_origin(inner) is list:
        each = choices(_args(inner)[0])
        return f"each {each}" if each else ""
    if typing.get_origin(inner) is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in _args(inner))
    return ""


def registry_choices() -> dict[tuple[type[BaseModel], str], str]:
    """Choices a validator takes from a registry, by (declaring class, field)."""
    from pamflow.audio.ffmpeg import MP3_KBPS
    from pamflow.datasets.codec import CodecSpec
    from pamflow.datasets.nmr import DISTORTIONS, NmrSpec
    from pamflow.datasets.spec import PerturbedSpec
    from pamflow.perturbations import names

    return {
        (PerturbedSpec, "families"): "each once, of: " + ", ".join(f"`{n}`" for n in names()),
        (CodecSpec, "bitrates"): "each once, of: " + ", ".join(str(k) for k in MP3_KBPS),
        (NmrSpec, "distortions"): "each once, of: " + ", ".join(f"`{d}`" for d in DISTORTIONS),
    }


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rows(
    model: type[BaseModel], names: list[str], prefix: str = "", parent: Any = None
) -> Iterator[str]:
    """Table rows for the fields ``names`` of ``model``, each followed by its nested
    fields (``strength.low``...), whose defaults are read from the parent's default."""
    extra = registry_choices()
    for name in names:
        info = model.model_fields[name]
        default = _default(info) if parent is None else getattr(parent, name, PydanticUndefined)
        shown = "required" if default is PydanticUndefined else f"`{value(default)}`"
        allowed = [bounds(info), choices(info.annotation)]
        owner = next(c for c in model.__mro__ if name in c.__dict__.get("__annotations__", {}))
        allowed.append(extra.get((owner, name), ""))
        yield (
            f"| `{prefix}{name}` | {type_name(info.annotation)} | {shown} "
            f"| {_cell('; '.join(a for a in allowed if a))} | {_cell(info.description or '')} |\n"
        )
        sub = nested_model(info.annotation)
        if sub is not None:
            inner = None if default is PydanticUndefined else default
            yield from rows(sub, list(sub.model_fields), f"{prefix}{name}.", inner)


TABLE = "| field | type | default | allowed | meaning |\n|---|---|---|---|---|\n"


# -- the spec classes ---------------------------------------------------------------------


def own_fields(cls: type[BaseModel]) -> list[str]:
    """The fields ``cls`` declares in its own body (new ones and redefined ones)."""
    own = cls.__dict__.get("__annotations__", {})
    return [n for n in cls.model_fields if n in own]


def shared_classes() -> list[type[BaseSpec]]:
    """Spec classes above some recipe's spec (BaseSpec, PerturbedSpec...), most general
    first."""
    found: list[type[BaseSpec]] = []
    for name in recipe_names():
        for cls in reversed(get_recipe(name).Spec.__mro__[1:]):
            if isinstance(cls, type) and issubclass(cls, BaseSpec) and cls not in found:
                found.append(cls)
    return sorted(found, key=lambda c: len(c.__mro__))


def _anchor(cls: type) -> str:
    return cls.__name__.lower()


def _doc(obj: Any) -> str:
    text = inspect.getdoc(obj) or ""
    return text.split("\n\n")[0].replace("\n", " ")


def _module_path(obj: Any) -> str:
    return f"`{obj.__module__.replace('.', '/')}.py`"


def _recipe_section(recipe: Recipe[Any]) -> str:
    spec = recipe.Spec
    own = own_fields(spec)
    what = recipe.description[:1].upper() + recipe.description[1:]
    out = [f"\n## {recipe.name}\n\n{what}; how rows are made: the docstring of "]
    out.append(f"{_module_path(spec)}. Spec `{spec.__name__}`. ")
    inherited = []
    for base in [c for c in shared_classes() if issubclass(spec, c)]:
        names = ", ".join(f"`{n}`" for n in own_fields(base) if n not in own)
        inherited.append(f"[{base.__name__}](#{_anchor(base)}) ({names})")
    if inherited:
        out.append("Besides its own fields below, it has those of " + ", ".join(inherited))
        redefined = [n for n in own if any(n in own_fields(b) for b in spec.__mro__[1:-1])]
        if redefined:
            out.append("; it redefines " + ", ".join(f"`{n}`" for n in redefined))
        out.append(".\n")
    if own:
        out.append("\n" + TABLE + "".join(rows(spec, own)))
    return "".join(out)


def render() -> str:
    out = [HEADER]
    for name in recipe_names():
        recipe = get_recipe(name)
        out.append(
            f"| [`{name}`](#{name}) | `{recipe.Spec.__name__}` | {_cell(recipe.description)} |\n"
        )
    out.append("\n## Fields recipes share\n")
    for cls in shared_classes():
        users = [n for n in recipe_names() if issubclass(get_recipe(n).Spec, cls)]
        out.append(f"\n### {cls.__name__}\n\n{_doc(cls)} Code: {_module_path(cls)}. ")
        out.append("Used by " + ", ".join(f"[`{u}`](#{u})" for u in users) + ".\n\n")
        out.append(TABLE + "".join(rows(cls, own_fields(cls))))
    for name in recipe_names():
        out.append(_recipe_section(get_recipe(name)))
    return "".join(out)


def missing_descriptions(
    models: list[type[BaseModel]] | None = None,
) -> list[str]:
    """``Class.field`` of every field (nested models included) without a description; by
    default over every recipe's spec."""
    todo = list(models) if models is not None else [get_recipe(n).Spec for n in recipe_names()]
    seen: set[type[BaseModel]] = set()
    missing: list[str] = []
    while todo:
        model = todo.pop(0)
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            if not (info.description or "").strip():
                owner = next(
                    c for c in model.__mro__ if name in c.__dict__.get("__annotations__", {})
                )
                missing.append(f"{owner.__name__}.{name}")
            sub = nested_model(info.annotation)
            if sub is not None:
                todo.append(sub)
    return sorted(set(missing))


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render())
