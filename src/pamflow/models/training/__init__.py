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
- The quality scorer (:mod:`~pamflow.models.training.scorer`): :class:`ScorerTrainConfig`,
  :func:`train_scorer`.
- Reading the data (:mod:`~pamflow.models.training.data`): the held-out split, batches, crops.

Every run writes ``checkpoint.pt`` (resumable), ``model.pt`` (when complete),
``metrics.jsonl`` and ``metrics.png`` into its ``out_dir`` and returns a summary dict.
"""

import importlib
import pkgutil

from pamflow.models.registry import train, train_config
from pamflow.models.training.cdpam import (
    STAGES,
    CDPAMTrainConfig,
    cdpam_contrastive,
    cdpam_jnd,
    cdpam_triplet,
    train_cdpam,
)
from pamflow.models.training.config import TrainConfig
from pamflow.models.training.dpam import DPAMTrainConfig, train_dpam
from pamflow.models.training.loop import fit
from pamflow.models.training.noresqa import NORESQATrainConfig, train_noresqa
from pamflow.models.training.scorer import ScorerTrainConfig, train_scorer

#: the modules of this package shared by every model; each other module trains one model and
#: registers it (:func:`pamflow.models.registry.register`), so a new model's training is one
#: new file here
SHARED = frozenset({"augment", "config", "data", "log", "loop", "state"})
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in SHARED:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "STAGES",
    "CDPAMTrainConfig",
    "DPAMTrainConfig",
    "NORESQATrainConfig",
    "ScorerTrainConfig",
    "TrainConfig",
    "cdpam_contrastive",
    "cdpam_jnd",
    "cdpam_triplet",
    "fit",
    "train_cdpam",
    "train_dpam",
    "train",
    "train_config",
    "train_noresqa",
    "train_scorer",
]
