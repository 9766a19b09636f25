"""Training CDPAM in its three stages (CDPAM paper, section 3 and Fig. 1).

a. :func:`cdpam_contrastive` on ``contrastive`` datasets (audio ``anchor``, ``positive``;
   ``pair_kind`` "acoustic" | "content"; ``anchor_source_id``, ``positive_source_id``): the
   encoder and projection head learn with NT-Xent (temperature 1, as the released code),
   acoustic pairs on the acoustic half of the embedding and content pairs on the content
   half. No source appears twice in a batch, so no negative shares a recording with its
   anchor. Adam 1e-4, batch 16, 250 epochs in the paper.
b. :func:`cdpam_jnd` on ``jnd`` datasets, from stage a's checkpoint: the loss-net (weighted
   MLP distance) and the JND classifier learn with cross-entropy; the encoder is frozen
   unless ``train_encoder``. Adam 1e-4, 250 epochs in the paper.
c. :func:`cdpam_triplet` on ``triplet`` datasets (audio ``reference``, ``a``, ``b``;
   ``label`` 0 = A closer, 1 = B closer; optionally only rows whose ``agreement`` is at least
   ``min_agreement``), from stage b's checkpoint: margin ranking loss (margin 0.1) on the
   loss-net distances. Adam 1e-4, 100 epochs in the paper.

Every stage uses the paper's online augmentation (0.25 s of silence at the start or the end
and a gain in -20..0 dB, independently on each input). :func:`train_cdpam` chains the
stages in ``out_dir/{contrastive,jnd,triplet}``, skipping a stage whose ``model.pt`` exists.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor
from torch.nn import functional as F

from pamflow.models import lean, registry
from pamflow.models.cdpam import CDPAM, CDPAMConfig
from pamflow.models.losses import nt_xent, triplet_margin_ranking
from pamflow.models.measured import levels_evaluator
from pamflow.models.training.config import TrainConfig, resolve_device
from pamflow.models.training.data import RowFilter, not_null
from pamflow.models.training.dpam import JND_TASK
from pamflow.models.training.loop import Context, Task, fit
from pamflow.models.training.state import load_init

PAIR_KINDS = ("acoustic", "content")
#: ``checkpointing: auto`` turns it on above this many GiB of activations a step (CPU only)
AUTO_GIB = 1.0


@dataclass(frozen=True)
class CDPAMTrainConfig(TrainConfig):
    """One CDPAM stage: Adam 1e-4, batch 16 (paper); silence and -20..0 dB gain augmentation.

    ``temperature``: NT-Xent (stage a). ``margin``: margin ranking (stage c).
    ``train_encoder``: stages b and c also fine-tune the encoder (frozen by default: the
    paper trains the loss-net on top of the contrastive encoder). ``min_agreement``: stage c
    trains only on triplets with at least this listener agreement (all labelled ones if None).
    """

    model: CDPAMConfig = field(
        default_factory=CDPAMConfig, metadata={"description": "the architecture's sizes"}
    )
    gain_db: tuple[float, float] = (-20.0, 0.0)
    temperature: float = field(
        default=1.0, metadata={"description": "NT-Xent temperature (stage contrastive)"}
    )
    margin: float = field(
        default=0.1, metadata={"description": "margin of the ranking loss (stage triplet)"}
    )
    train_encoder: bool = field(
        default=False,
        metadata={
            "description": "stages jnd and triplet also fine-tune the encoder (frozen when "
            "false, as in the paper)"
        },
    )
    min_agreement: float | None = field(
        default=None,
        metadata={
            "description": "stage triplet trains only on triplets whose listener agreement is "
            "at least this (null: every labelled one)"
        },
    )
    checkpointing: Literal["auto", "on", "off"] = field(
        default="auto",
        metadata={
            "description": "activation checkpointing of the encoder while it trains "
            "(pamflow.models.lean: the same loss and gradients, a fifth of the memory, about "
            "twice the time a step); auto: on the CPU where a step would otherwise keep over "
            "1 GiB of activations (at full size, any batch)"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.checkpointing, bool):  # YAML reads on/off as booleans
            object.__setattr__(self, "checkpointing", "on" if self.checkpointing else "off")
        if self.checkpointing not in ("auto", "on", "off"):
            raise ValueError(
                f"{type(self).__name__}: invalid value(s) {{'checkpointing': "
                f"{self.checkpointing!r}}}; expected auto, on or off"
            )

    def resumable_changes(self) -> frozenset[str]:
        """Checkpointing changes neither loss nor gradients: a resumed run may change it."""
        return super().resumable_changes() | {"checkpointing"}

    def checkpoints(self, trains_encoder: bool, inputs: int) -> bool:
        """Whether a stage whose rows hold ``inputs`` waveforms runs its encoder
        checkpointed: ``on``, or ``auto`` where the encoder trains on the CPU and the plain
        forward pass would keep more than :data:`AUTO_GIB` of a batch (the full-size model
        keeps 0.8 GiB a waveform of 2.5 s: 26 GiB for a contrastive batch of 16 pairs)."""
        if not trains_encoder or self.checkpointing == "off":
            return False
        if self.checkpointing == "on":
            return True
        samples = round(self.clip_seconds * self.model.sample_rate)
        kept = self.batch_size * inputs * lean.plain_bytes(self.model, samples)
        return resolve_device(self.device).type == "cpu" and kept > AUTO_GIB * 2**30

    @classmethod
    def tiny(cls, **overrides: Any) -> CDPAMTrainConfig:
        """A few-thousand-parameter model on 0.5 s crops, batches of 4: tests, smoke runs."""
        kw: dict[str, Any] = dict(
            model=CDPAMConfig.tiny(),
            batch_size=4,
            clip_seconds=0.5,
            silence_s=0.05,
            log_every=1,
            eval_fraction=0.2,
        )
        return cls(**{**kw, **overrides})


# -- stage a: contrastive pre-training -------------------------------------------------------


def retrieval_hits(z_i: Tensor, z_j: Tensor) -> Tensor:
    """For each of the 2N projections, whether its most similar other one (cosine) is its
    positive: NT-Xent's own classification, as accuracy. ``[2N]`` bool."""
    z = F.normalize(torch.cat([z_i, z_j]), dim=1)
    sim = (z @ z.T).fill_diagonal_(-torch.inf)
    n = z_i.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return sim.argmax(1) == target


def contrastive_step(
    model: CDPAM, batch: dict[str, Any], ctx: Context[CDPAMTrainConfig]
) -> tuple[Tensor, Tensor]:
    """NT-Xent on the projected acoustic embeddings of the acoustic pairs and on the projected
    content embeddings of the content pairs, weighted by their counts (a kind with fewer
    than two pairs in the batch has no negatives and is left out). Anchors and positives go
    through the encoder, and then the projection head, in one batch (one batch-norm pass)."""
    kinds = list(batch["pair_kind"])
    unknown = sorted(set(kinds) - set(PAIR_KINDS))
    if unknown:
        raise ValueError(f"pair_kind: unknown value(s) {unknown}; expected {list(PAIR_KINDS)}")
    n = len(kinds)
    x = torch.cat([ctx.augment(batch["anchor"]), ctx.augment(batch["positive"])])
    acoustic, content = model.embed(x)
    loss, used, hits = acoustic.sum() * 0.0, 0, []
    for kind, emb in zip(PAIR_KINDS, (acoustic, content), strict=True):
        rows = torch.tensor([i for i, k in enumerate(kinds) if k == kind], device=emb.device)
        if len(rows) < 2:
            continue
        z_i, z_j = model.project(torch.cat([emb[:n][rows], emb[n:][rows]])).chunk(2)
        loss = loss + nt_xent(z_i, z_j, ctx.cfg.temperature) * len(rows)
        used += len(rows)
        hits.append(retrieval_hits(z_i.detach(), z_j.detach()))
    correct = torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool, device=x.device)
    return loss / max(used, 1), correct


CONTRASTIVE_TASK = Task(
    name="cdpam-contrastive",
    model_name="cdpam",
    audio=("anchor", "positive"),
    columns=("pair_kind",),
    step=contrastive_step,
    keep=not_null("pair_kind"),
    group_columns=("anchor_source_id", "positive_source_id"),
)


def cdpam_contrastive(
    data: list[str],
    out_dir: str | os.PathLike,
    cfg: CDPAMTrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Stage a: train the encoder and projection head of a new CDPAM on ``contrastive``
    datasets; return the run summary."""
    cfg = cfg or CDPAMTrainConfig()
    torch.manual_seed(cfg.seed)
    model = CDPAM(cfg.model)
    model.encoder.checkpointing = cfg.checkpoints(True, len(CONTRASTIVE_TASK.audio))
    meta = {"checkpointing": model.encoder.checkpointing}
    return fit(CONTRASTIVE_TASK, model, data, out_dir, cfg, resume=resume, meta=meta)


# -- stages b and c: the loss-net on JND pairs, then on triplets -------------------------------


def loss_net_mode(model: CDPAM, train_encoder: bool) -> None:
    """Training mode, with the encoder's batch-norm statistics frozen unless it trains."""
    model.train()
    if not train_encoder:
        model.encoder.eval()
        model.projection.eval()


def from_stage(init: str | os.PathLike, cfg: CDPAMTrainConfig, inputs: int = 2) -> CDPAM:
    """A CDPAM with the weights of checkpoint ``init``; the projection head (used by stage a
    only) and, unless ``cfg.train_encoder``, the encoder are frozen. ``inputs``: waveforms
    a row of the stage holds (for :meth:`CDPAMTrainConfig.checkpoints`)."""
    torch.manual_seed(cfg.seed)
    model = CDPAM(cfg.model)
    model.load_state_dict(load_init(init, "cdpam", cfg.model))
    frozen = [model.projection] + ([] if cfg.train_encoder else [model.encoder])
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    model.encoder.checkpointing = cfg.checkpoints(cfg.train_encoder, inputs)
    return model


def cdpam_jnd(
    data: list[str],
    out_dir: str | os.PathLike,
    init: str | os.PathLike,
    cfg: CDPAMTrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Stage b: train the loss-net and JND classifier on ``jnd`` datasets, starting from
    checkpoint ``init`` (stage a's ``model.pt``); return the run summary."""
    cfg = cfg or CDPAMTrainConfig()
    model = from_stage(init, cfg)
    mode = functools.partial(loss_net_mode, train_encoder=cfg.train_encoder)
    jnd: Task[CDPAM, CDPAMTrainConfig] = JND_TASK  # DPAM's task, serving any JND classifier
    task = dataclasses.replace(jnd, name="cdpam-jnd", model_name="cdpam", train_mode=mode)
    meta = {"init": str(init), "checkpointing": model.encoder.checkpointing}
    return fit(task, model, data, out_dir, cfg, resume=resume, meta=meta)


def triplet_step(
    model: CDPAM, batch: dict[str, Any], ctx: Context[CDPAMTrainConfig]
) -> tuple[Tensor, Tensor]:
    """Margin ranking on ``d(reference, a)`` and ``d(reference, b)`` (one encoder pass for
    the three inputs); correct = the nearer one (A on a tie) is the labelled one."""
    x = torch.cat([ctx.augment(batch[c]) for c in ("reference", "a", "b")])
    ref, a, b = model.embed(x)[0].chunk(3)
    d_a, d_b = model.distance_from_embeddings(ref, a), model.distance_from_embeddings(ref, b)
    labels = batch["label"]
    loss = triplet_margin_ranking(d_a, d_b, labels, margin=ctx.cfg.margin)
    return loss, (d_b < d_a).long() == labels


def triplet_rows(min_agreement: float | None) -> RowFilter:
    """Row filter: labelled triplets, with ``agreement >= min_agreement`` when given."""

    def keep(table: pa.Table) -> np.ndarray:
        mask = not_null("label")(table)
        if min_agreement is not None:
            agreement = table.column("agreement").to_numpy(zero_copy_only=False)
            mask &= np.nan_to_num(agreement.astype(float), nan=-np.inf) >= min_agreement
        return mask

    return keep


def cdpam_triplet(
    data: list[str],
    out_dir: str | os.PathLike,
    init: str | os.PathLike,
    cfg: CDPAMTrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Stage c: fine-tune the loss-net on ``triplet`` datasets, starting from checkpoint
    ``init`` (stage b's ``model.pt``); return the run summary."""
    cfg = cfg or CDPAMTrainConfig()
    model = from_stage(init, cfg, inputs=3)
    columns = ("label",) + (("agreement",) if cfg.min_agreement is not None else ())
    task = Task(
        name="cdpam-triplet",
        model_name="cdpam",
        audio=("reference", "a", "b"),
        columns=columns,
        step=triplet_step,
        keep=triplet_rows(cfg.min_agreement),
        train_mode=functools.partial(loss_net_mode, train_encoder=cfg.train_encoder),
    )
    meta = {"init": str(init), "checkpointing": model.encoder.checkpointing}
    return fit(task, model, data, out_dir, cfg, resume=resume, meta=meta)


def train_cdpam(
    contrastive: list[str],
    jnd: list[str],
    triplet: list[str],
    out_dir: str | os.PathLike,
    cfg: CDPAMTrainConfig | None = None,
    *,
    stage_cfgs: dict[str, CDPAMTrainConfig] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """The three stages in ``out_dir/contrastive``, ``out_dir/jnd`` and ``out_dir/triplet``,
    each from the previous stage's ``model.pt`` (:func:`pamflow.models.registry.train`). A
    stage whose ``model.pt`` exists is done and skipped (its stored summary is returned).
    ``stage_cfgs`` overrides ``cfg`` per stage (keys from :data:`STAGES`), e.g. for the
    paper's 250 / 250 / 100 epochs. Returns the stage summaries and ``model``, the final
    model's path."""
    data = {"contrastive": contrastive, "jnd": jnd, "triplet": triplet}
    return registry.train("cdpam", data, out_dir, cfg, stage_cfgs=stage_cfgs, resume=resume)


ENTRY = registry.register(
    registry.ModelEntry(
        name="cdpam",
        architecture=CDPAM,
        config=CDPAMConfig,
        train_config=CDPAMTrainConfig,
        # init: None for the first stage only; registry.train gives every later stage the
        # previous stage's model.pt
        stages=(
            registry.Stage(
                "contrastive",
                "contrastive",
                lambda data, out, cfg, init, resume: cdpam_contrastive(
                    data, out, cfg, resume=resume
                ),
            ),
            registry.Stage(
                "jnd",
                "jnd",
                lambda data, out, cfg, init, resume: cdpam_jnd(
                    data, out, cast(str, init), cfg, resume=resume
                ),
            ),
            registry.Stage(
                "triplet",
                "triplet",
                lambda data, out, cfg, init, resume: cdpam_triplet(
                    data, out, cast(str, init), cfg, resume=resume
                ),
            ),
        ),
        description="contrastive encoder + weighted-MLP distance (CDPAM, three stages)",
        evaluators={"levels": levels_evaluator},
    )
)
#: the stage names, in order
STAGES = tuple(stage.name for stage in ENTRY.stages)
