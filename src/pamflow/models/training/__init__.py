"""Training the three metrics on pamflow datasets: the public entry points.

One config dataclass and one function per model, each a thin setup around the shared loop
:func:`pamflow.models.training.loop.fit` (read that one top to bottom)::

    from pamflow.models.training import DPAMTrainConfig, train_dpam
    summary = train_dpam(["data/jnd"], "runs/dpam", DPAMTrainConfig(epochs=10, device="cuda"))

- DPAM (:mod:`~pamflow.models.training.dpam`): :class:`DPAMTrainConfig`, :func:`train_dpam`
  (variants ``scratch``, ``lin``, ``fin``).
- CDPAM (:mod:`~pamflow.models.training.cdpam`): :class:`CDPAMTrainConfig`, the stages
  :func:`cdpam_contrastive`, :func:`cdpam_jnd`, :func:`cdpam_triplet`, each starting from
  the previous stage's checkpoint, and :func:`train_cdpam` chaining them.
- NORESQA (:mod:`~pamflow.models.training.noresqa`): :class:`NORESQATrainConfig`,
  :func:`train_noresqa`.
- Reading the data (:mod:`~pamflow.models.training.data`): the held-out split, batches, crops.

Every run writes ``checkpoint.pt`` (resumable), ``model.pt`` (when complete),
``metrics.jsonl`` and ``metrics.png`` into its ``out_dir`` and returns a summary dict.
"""

from pamflow.models.training.cdpam import (
    STAGES,
    CDPAMTrainConfig,
    cdpam_contrastive,
    cdpam_jnd,
    cdpam_triplet,
    train_cdpam,
)
from pamflow.models.training.dpam import DPAMTrainConfig, train_dpam
from pamflow.models.training.loop import TrainConfig, fit
from pamflow.models.training.noresqa import NORESQATrainConfig, train_noresqa

__all__ = [
    "CONFIGS",
    "train_config",
    "STAGES",
    "CDPAMTrainConfig",
    "DPAMTrainConfig",
    "NORESQATrainConfig",
    "TrainConfig",
    "cdpam_contrastive",
    "cdpam_jnd",
    "cdpam_triplet",
    "fit",
    "train_cdpam",
    "train_dpam",
    "train_noresqa",
]


#: model name -> (train config class, model config class)
CONFIGS = {
    "dpam": DPAMTrainConfig,
    "cdpam": CDPAMTrainConfig,
    "noresqa": NORESQATrainConfig,
}


def train_config(model: str, values: dict | None = None, **overrides: object) -> TrainConfig:
    """A training config for ``model`` from plain values (a YAML file's), with overrides.

    ``tiny: true`` starts from the model's tiny preset (small sizes, for smoke runs); a
    ``model:`` mapping sets fields of the model's own config. Unknown fields are an error.
    """
    import dataclasses

    from pamflow.models.checkpoint import config_from_dict

    try:
        cls = CONFIGS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; known: {sorted(CONFIGS)}") from None
    data = {**(values or {}), **{k: v for k, v in overrides.items() if v is not None}}
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
