"""PyTorch models of the perceptual metrics pamflow trains, their losses and checkpoints.

- :mod:`~pamflow.models.dpam`: DPAM (JND-trained deep feature distance).
- :mod:`~pamflow.models.cdpam`: CDPAM (contrastive encoder + weighted-MLP distance).
- :mod:`~pamflow.models.noresqa`: NORESQA (quality relative to a non-matching reference).
- :mod:`~pamflow.models.losses`: NT-Xent, margin ranking, JND and NORESQA losses.
- :mod:`~pamflow.models.checkpoint`: checkpoints of names, plain configs and tensors.
- :mod:`~pamflow.models.training`, :mod:`~pamflow.models.evaluate`: training and evaluation.
- :func:`load` (:mod:`~pamflow.models.metric`): a checkpoint as a frozen, differentiable
  loss ``[B, T] x [B, T] -> [B]`` that resamples its inputs (the bare model:
  :func:`pamflow.models.checkpoint.load`).

Every model has a frozen config dataclass (defaults = the papers' sizes; ``Config.tiny()``
for tests) and takes mono float waveforms ``[B, T]`` at ``config.sample_rate``.
"""

from pamflow.models.cdpam import CDPAM, CDPAMConfig, CDPAMEncoder, augment
from pamflow.models.checkpoint import (
    REGISTRY,
    build_model,
    load_checkpoint,
    save,
    save_checkpoint,
)
from pamflow.models.dpam import DPAM, DPAMConfig, DPAMFeatures
from pamflow.models.metric import PerceptualLoss, load
from pamflow.models.noresqa import NORESQA, NORESQAConfig

__all__ = [
    "CDPAM",
    "CDPAMConfig",
    "CDPAMEncoder",
    "DPAM",
    "DPAMConfig",
    "DPAMFeatures",
    "NORESQA",
    "NORESQAConfig",
    "PerceptualLoss",
    "REGISTRY",
    "augment",
    "build_model",
    "load",
    "load_checkpoint",
    "save",
    "save_checkpoint",
]
