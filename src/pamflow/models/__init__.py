"""PyTorch models of the perceptual metrics pamflow trains, their losses and checkpoints.

- :mod:`~pamflow.models.registry`: every model declared once (architecture, configs,
  training stages and the recipes they read); flows, the CLI, evaluation and the loss
  wrapper read it. Every model answers ``distance(x, y) -> [B]``.
- :mod:`~pamflow.models.dpam`: DPAM (JND-trained deep feature distance).
- :mod:`~pamflow.models.cdpam`: CDPAM (contrastive encoder + weighted-MLP distance).
- :mod:`~pamflow.models.noresqa`: NORESQA (quality relative to a non-matching reference).
- :mod:`~pamflow.models.codecnet`: codecnet (an MP3 codec approximation as a loss; spectral
  or time-domain U-Net), with its evaluation (:mod:`~pamflow.models.codec_eval`) and the
  paper's autoencoder experiment (:mod:`~pamflow.models.codec_experiment`).
- :mod:`~pamflow.models.scorer`: the learned quality scorer (paper 004: 0 = good domain,
  1 = cheap), its evaluation and saliency (:mod:`~pamflow.models.scorer_eval`), and adaptive
  EQ against it (:mod:`~pamflow.models.enhance`, :mod:`~pamflow.models.enhance_files`).
- :mod:`~pamflow.models.losses`: NT-Xent, margin ranking, JND and NORESQA losses.
- :mod:`~pamflow.models.checkpoint`: checkpoints of names, plain configs and tensors.
- :mod:`~pamflow.models.training`: configs, the shared loop, one module per model.
- :mod:`~pamflow.models.evaluate`: evaluation on datasets and MOS lists.
- :func:`load` (:mod:`~pamflow.models.metric`): a checkpoint as a frozen, differentiable
  loss ``[B, T] x [B, T] -> [B]`` that resamples its inputs (the bare model:
  :func:`pamflow.models.registry.load_model`).

Every model has a frozen config dataclass (defaults = the papers' sizes; ``Config.tiny()``
for tests) and takes mono float waveforms ``[B, T]`` at ``config.sample_rate``.
"""

from pamflow.models import training  # registers every model (one entry per training module)
from pamflow.models.cdpam import CDPAM, CDPAMConfig, CDPAMEncoder
from pamflow.models.checkpoint import load_checkpoint, save_checkpoint
from pamflow.models.codecnet import CodecNet, CodecNetConfig
from pamflow.models.dpam import DPAM, DPAMConfig, DPAMFeatures
from pamflow.models.metric import PerceptualLoss, load
from pamflow.models.noresqa import NORESQA, NORESQAConfig
from pamflow.models.registry import ModelEntry, build_model, load_model, save_model
from pamflow.models.scorer import Scorer, ScorerConfig
from pamflow.models.training.augment import augment

__all__ = [
    "CDPAM",
    "CDPAMConfig",
    "CDPAMEncoder",
    "CodecNet",
    "CodecNetConfig",
    "DPAM",
    "DPAMConfig",
    "DPAMFeatures",
    "NORESQA",
    "NORESQAConfig",
    "ModelEntry",
    "PerceptualLoss",
    "Scorer",
    "ScorerConfig",
    "augment",
    "build_model",
    "load",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "save_model",
    "training",
]
