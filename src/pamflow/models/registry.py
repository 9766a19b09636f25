"""The models pamflow trains, each declared once: the single source of truth.

A :class:`ModelEntry` names the architecture and its config, the training config, and the
training stages (each reads datasets of one recipe and starts from the previous stage's
``model.pt``). The flows, the CLI's choices, evaluation, the loss wrapper and checkpoint
loading all read it::

    entry = registry.get("cdpam")
    entry.recipes                      # ("contrastive", "jnd", "triplet")
    registry.train("dpam", {"jnd": ["data/jnd"]}, "runs/dpam", cfg)
    model = registry.load_model("runs/dpam/model.pt")
    d = model.distance(x, y)           # every architecture answers distance(x, y) -> [B]

Entries are registered where each model's training is defined
(``pamflow/models/training/<model>.py``); importing :mod:`pamflow.models` imports them all.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pamflow.models.base import MetricModel, ModelConfig
from pamflow.models.checkpoint import config_from_dict, load_checkpoint, save_checkpoint
from pamflow.models.training.config import TrainConfig

#: a stage's training function: (data, out_dir, cfg, init, resume) -> the run summary
StageFn = Callable[[list[str], Path, Any, "str | None", bool], dict[str, Any]]
#: runs one stage: (entry, stage, data, out_dir, cfg, init, resume) -> summary; the default
#: calls ``stage.run`` here, a flow submits it as a task instead
StageRunner = Callable[
    ["ModelEntry", "Stage", list[str], Path, Any, "str | None", bool], dict[str, Any]
]
#: a model's own evaluation on datasets of one recipe, called by
#: :func:`pamflow.models.evaluate.evaluate` as ``fn(model, paths, split=..., train_cfg=...,
#: batch_size=..., device=..., clip_seconds=..., figures=...)`` -> JSON-able results;
#: ``figures`` is a folder to draw the evaluation's figures into (PNG), or None for none
Evaluator = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One training run of a model: its name, the recipe of the datasets it reads, and the
    function that trains it (``init``: the previous stage's ``model.pt``, or None)."""

    name: str
    recipe: str
    run: StageFn


@dataclass(frozen=True)
class ModelEntry:
    """Everything the rest of pamflow needs to know about one model."""

    name: str
    architecture: type[MetricModel]
    config: type[ModelConfig]
    train_config: type[TrainConfig]
    stages: tuple[Stage, ...]
    description: str = ""
    #: recipe -> the model's own evaluation on its datasets (beyond what every model gets
    #: from ``distance`` on jnd and triplet datasets); e.g. the scorer's on domain datasets
    evaluators: Mapping[str, Evaluator] = field(default_factory=dict)

    @property
    def recipes(self) -> tuple[str, ...]:
        """The recipes of the datasets training needs, in stage order, each once."""
        return tuple(dict.fromkeys(s.recipe for s in self.stages))

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ValueError(
            f"{self.name} has no stage {name!r}; stages: {[s.name for s in self.stages]}"
        )

    def stage_dir(self, out_dir: str | os.PathLike, stage: Stage) -> Path:
        """Where ``stage`` writes: ``out_dir`` itself for one-stage models, else
        ``out_dir/<stage>``."""
        return Path(out_dir) if len(self.stages) == 1 else Path(out_dir) / stage.name


_MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in _MODELS:
        raise TypeError(f"model {entry.name!r} registered twice")
    _MODELS[entry.name] = entry
    return entry


def get(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(_MODELS)}") from None


def names() -> list[str]:
    return sorted(_MODELS)


def entry_of(model: MetricModel) -> ModelEntry:
    """The entry whose architecture ``model`` is (or subclasses)."""
    for entry in _MODELS.values():
        if isinstance(model, entry.architecture):
            return entry
    raise TypeError(f"{type(model).__name__} is not a registered model: {names()}")


def build_model(name: str, config_dict: Mapping[str, Any] | None = None) -> MetricModel:
    """A fresh model of registry ``name`` from a plain config dict (defaults if None)."""
    entry = get(name)
    return entry.architecture(config_from_dict(entry.config, config_dict or {}))


def load_model(path: str | os.PathLike, config: Mapping[str, Any] | None = None) -> MetricModel:
    """The model stored at ``path``, weights loaded (strictly), in eval mode on the CPU.
    ``config`` overrides fields of the stored config that change no weight (e.g. a loss's
    weights); one that does fails the strict load."""
    ckpt = load_checkpoint(path)
    try:
        model = build_model(ckpt["model"], {**ckpt["config"], **(config or {})})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"{path}: weights do not fit a {ckpt['model']} model with the stored config: {e}"
        ) from e
    return model.eval()


def train_config(model: str, values: dict | None = None, **overrides: object) -> TrainConfig:
    """A training config for ``model`` from plain values (a YAML file's), with overrides.

    ``tiny: true`` starts from the model's tiny preset (small sizes, for smoke runs); a
    ``model:`` mapping sets fields of the model's own config. Unknown fields are an error.
    A ``stages:`` mapping (see :func:`stage_train_configs`) is checked and left out: the
    config returned is the one every stage it does not name runs with.
    """
    cls = get(model).train_config
    data = {**(values or {}), **{k: v for k, v in overrides.items() if v is not None}}
    stages = data.pop("stages", None)
    if stages is not None:
        stage_train_configs(model, {**data, "stages": stages})  # a bad stage fails here
    tiny = bool(data.pop("tiny", False))
    base = cls.tiny() if tiny else cls()
    model_values = data.pop("model", None)
    if model_values is not None:
        model_cls = type(base.model)
        merged = {**dataclasses.asdict(base.model), **model_values}
        data["model"] = config_from_dict(model_cls, merged)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
    if "gain_db" in data:
        data["gain_db"] = tuple(data["gain_db"])
    return dataclasses.replace(base, **data)


def stage_train_configs(model: str, values: dict | None = None) -> dict[str, TrainConfig]:
    """The per-stage training configs of a config's ``stages:`` mapping (stage name ->
    fields): each is the config's own fields with that stage's on top (a stage's fields win
    over the file's and the command line's). A stage's fields may not set ``model`` (the
    stages share one architecture) nor ``stages``; unknown stages are an error. ``{}`` when
    there is no ``stages:``."""
    data = dict(values or {})
    stages = data.pop("stages", None)
    if stages is None:
        return {}
    names = [s.name for s in get(model).stages]
    if not isinstance(stages, Mapping) or any(not isinstance(v, Mapping) for v in stages.values()):
        raise ValueError(f"stages: need a mapping of stage name -> fields, got {stages!r}")
    unknown = sorted(set(stages) - set(names))
    if unknown:
        raise ValueError(f"stages: unknown stage(s) {unknown}; {model}'s stages are {names}")
    out = {}
    for name, fields in stages.items():
        bad = sorted({"model", "stages", "tiny"} & set(fields))
        if bad:
            raise ValueError(f"stages.{name}: {bad} cannot differ between stages")
        out[name] = train_config(model, {**data, **fields})
    return out


def save_model(
    path: str | os.PathLike, model: MetricModel, extra: Mapping[str, Any] | None = None
) -> Path:
    """Save a registered model instance (its name and config come from its entry)."""
    return save_checkpoint(path, entry_of(model).name, model.config, model.state_dict(), extra)


def run_stage(
    entry: ModelEntry,
    stage: Stage,
    data: list[str],
    out_dir: Path,
    cfg: Any,
    init: str | None,
    resume: bool,
) -> dict[str, Any]:
    """Run one stage in this process (the default :data:`StageRunner`)."""
    return stage.run(data, out_dir, cfg, init, resume)


def train(
    name: str,
    data: Mapping[str, list[str]],
    out_dir: str | os.PathLike,
    cfg: TrainConfig | None = None,
    *,
    stage_cfgs: Mapping[str, TrainConfig] | None = None,
    resume: bool = False,
    runner: StageRunner = run_stage,
) -> dict[str, Any]:
    """Train model ``name`` on ``data`` (recipe -> dataset paths) into ``out_dir``.

    The stages run in order, each from the previous stage's ``model.pt``; a stage whose
    ``model.pt`` exists is done and skipped (its stored summary is reported, with
    ``skipped: True``). ``stage_cfgs`` overrides ``cfg`` per stage. A one-stage model
    returns its run summary; a multi-stage one the summaries by stage and ``model``, the
    final model's path.
    """
    entry = get(name)
    cfg = cfg if cfg is not None else entry.train_config()
    stage_cfgs = dict(stage_cfgs or {})
    unknown = sorted(set(stage_cfgs) - {s.name for s in entry.stages})
    if unknown:
        raise ValueError(
            f"stage_cfgs: unknown stage(s) {unknown}; stages are {[s.name for s in entry.stages]}"
        )
    missing = [r for r in entry.recipes if not data.get(r)]
    if missing:
        raise ValueError(f"{name} needs {', '.join(missing)} dataset(s); got {sorted(data)}")
    summaries: dict[str, Any] = {}
    init: str | None = None
    for stage in entry.stages:
        out = entry.stage_dir(out_dir, stage)
        final = out / "model.pt"
        if final.exists():
            stored = load_checkpoint(final)["extra"].get("summary", {})
            summaries[stage.name] = {**stored, "skipped": True}
        else:
            summaries[stage.name] = runner(
                entry,
                stage,
                list(data[stage.recipe]),
                out,
                stage_cfgs.get(stage.name, cfg),
                init,
                resume,
            )
        init = str(final)
    if len(entry.stages) == 1:
        return summaries[entry.stages[0].name]
    return {**summaries, "model": init}


__all__ = [
    "Evaluator",
    "ModelEntry",
    "Stage",
    "build_model",
    "entry_of",
    "get",
    "load_model",
    "names",
    "register",
    "run_stage",
    "save_model",
    "stage_train_configs",
    "train",
    "train_config",
]
