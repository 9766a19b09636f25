"""Training losses of the three metrics, and NORESQA's Δ binning.

- :func:`jnd_cross_entropy`: DPAM/CDPAM JND classification (label 1 = "different").
- :func:`nt_xent`: CDPAM's contrastive pre-training loss (SimCLR's NT-Xent, cosine similarity).
- :func:`triplet_margin_ranking`: CDPAM's triplet (2AFC) fine-tuning, margin 0.1.
- NORESQA (paper section 3.3): :func:`delta_bins` puts an absolute difference Δ (dB) into
  one of K equal bins over [0, Δmax); :func:`smoothed_targets` spreads a class index into the
  paper's smoothed labels (0.6 / 0.2 / 0.2); :func:`soft_cross_entropy` is the loss on the
  frame-averaged probabilities, with a mask for rows whose label is undefined (SNR of
  non-additive distortions); :func:`noresqa_loss` adds the three heads up.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from pamflow.measures import noresqa as labels


def jnd_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of JND logits ``[B, 2]`` against labels ``[B]`` in {0, 1}
    (0 = "same", 1 = "different"; float or integer)."""
    labels = torch.as_tensor(labels)
    if labels.shape != logits.shape[:1] or not _binary(labels):
        raise ValueError(
            f"jnd labels: need shape [{logits.shape[0]}] with values 0 (same) or "
            f"1 (different), got shape {tuple(labels.shape)}"
        )
    return F.cross_entropy(logits, labels.to(logits.device, non_blocking=True).long())


def _binary(values: Tensor) -> bool:
    """Whether every value is 0 or 1. Checked where the values are in host memory only:
    reading a GPU tensor's answer would stall the device every training step (the training
    loader's rows were checked when their dataset was written)."""
    if values.device.type != "cpu":
        return True
    return bool(torch.isin(values, values.new_tensor([0, 1])).all())


def nt_xent(z_i: Tensor, z_j: Tensor, temperature: float = 1.0) -> Tensor:
    """NT-Xent over ``N`` positive pairs ``(z_i[k], z_j[k])``, ``[N, D]`` each.

    Each of the ``2N`` projections is classified against the other ``2N - 1`` by cosine
    similarity / ``temperature``, its positive being the target; the loss is the mean
    cross-entropy. The CDPAM paper does not state a temperature; its released code uses 1.0
    (SimCLR's own default is 0.5), hence the default here.
    """
    if z_i.shape != z_j.shape or z_i.dim() != 2:
        raise ValueError(
            f"nt_xent: need two [N, D] tensors of one shape, got "
            f"{tuple(z_i.shape)} and {tuple(z_j.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"nt_xent: temperature must be > 0, got {temperature}")
    n = z_i.shape[0]
    z = F.normalize(torch.cat([z_i, z_j]), dim=1)
    sim = (z @ z.T) / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    idx = torch.arange(n, device=z.device)
    targets = torch.cat([idx + n, idx])
    return F.cross_entropy(sim, targets)


def triplet_margin_ranking(d_a: Tensor, d_b: Tensor, closer: Tensor, margin: float = 0.1) -> Tensor:
    """Margin ranking loss on the distances ``d_a = d(ref, A)``, ``d_b = d(ref, B)`` ``[B]``.

    ``closer`` ``[B]`` names the recording judged closer to the reference: 0 = A, 1 = B.
    A row costs nothing once the farther one's distance exceeds the closer one's by at
    least ``margin``; otherwise ``margin - (d_far - d_close)``.
    """
    closer = torch.as_tensor(closer)
    if not _binary(closer):
        raise ValueError("triplet closer labels must be 0 (A closer) or 1 (B closer)")
    closer = closer.to(d_a.device, non_blocking=True)
    sign = 1.0 - 2.0 * closer.to(d_a.dtype)  # +1: d_b should be the larger
    return F.margin_ranking_loss(d_b, d_a, sign, margin=margin)


def bin_centres(num_classes: int = 40, delta_max: float = 40.0) -> Tensor:
    """Centres ``μ_k = (k - 1/2) Δmax / K`` (dB) of the K Δ bins, ``[K]`` float32."""
    return torch.from_numpy(labels.bin_centres(num_classes, delta_max)).float()


def delta_bins(delta, num_classes: int = 40, delta_max: float = 40.0) -> Tensor:
    """Class index (0-based, long) of an absolute difference ``|Δ|`` in dB.

    Bin ``k`` holds ``[k Δmax/K, (k+1) Δmax/K)``; with the defaults 1 dB bins, class 0 for
    ``|Δ|`` in [0, 1) dB and class 39 for [39, 40). Values at or above ``Δmax`` go to the
    last class (the paper sets Δmax to the largest difference in the data). The math is
    :func:`pamflow.measures.noresqa.delta_bins`; the result is on ``delta``'s device.
    """
    t = torch.as_tensor(delta)
    idx = labels.delta_bins(t.detach().cpu().double().numpy(), num_classes, delta_max)
    return torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(t.device)


def smoothed_targets(idx: Tensor, num_classes: int = 40) -> Tensor:
    """The paper's smoothed labels ``[B, K]`` for class indices ``[B]``: 0.6 on the class,
    0.2 on each neighbour. At the first and the last class, which have one neighbour, the
    two remaining values are renormalised to sum to 1 (0.75 and 0.25). The math is
    :func:`pamflow.measures.noresqa.smoothed_targets`; the result is on ``idx``'s device."""
    t = torch.as_tensor(idx)
    return torch.from_numpy(labels.smoothed_targets(t.detach().cpu().numpy(), num_classes)).to(
        t.device
    )


def soft_cross_entropy(
    probs: Tensor, targets: Tensor, mask: Tensor | None = None, eps: float = 1e-8
) -> Tensor:
    """``mean_rows(-Σ_k targets_k log probs_k)`` for probabilities ``[B, K]`` (NORESQA applies
    it to the frame-averaged softmax). ``mask`` ``[B]`` (bool) keeps only the rows whose label
    is defined; with no row kept the loss is 0 (still differentiable)."""
    if probs.shape != targets.shape:
        raise ValueError(
            f"soft_cross_entropy: probs {tuple(probs.shape)} and targets "
            f"{tuple(targets.shape)} differ"
        )
    per_row = -(targets.to(probs) * torch.log(probs.clamp_min(eps))).sum(-1)
    if mask is None:
        return per_row.mean()
    mask = torch.as_tensor(mask, dtype=torch.bool, device=probs.device)
    if mask.shape != per_row.shape:
        raise ValueError(
            f"soft_cross_entropy: mask {tuple(mask.shape)} must be {tuple(per_row.shape)}"
        )
    kept = per_row * mask
    return kept.sum() / mask.sum().clamp_min(1)


def noresqa_loss(
    out: dict[str, Tensor],
    preference: Tensor,
    sisdr_delta: Tensor,
    snr_delta: Tensor,
    snr_defined: Tensor | None = None,
    delta_max: float = 40.0,
) -> Tensor:
    """``L = L_P + L_sdr + L_snr`` (paper eqs. 3-5) for an output of
    :meth:`pamflow.models.noresqa.NORESQA.forward`.

    ``preference`` ``[B]``: 0 when the first input (test) has the higher SI-SDR, else 1.
    ``sisdr_delta``/``snr_delta`` ``[B]``: differences in dB (signs ignored); rows where
    ``snr_defined`` is False (non-additive distortions) contribute no SNR loss, and their
    ``snr_delta`` may be NaN.
    """
    k = out["sisdr_probs"].shape[-1]
    dev = out["sisdr_probs"].device
    loss_p = F.cross_entropy(out["pref_logits"], torch.as_tensor(preference, device=dev).long())
    sdr_t = smoothed_targets(delta_bins(sisdr_delta, k, delta_max), k).to(dev)
    snr = torch.as_tensor(snr_delta).detach().cpu().double()
    if snr_defined is None:
        snr_defined = torch.isfinite(snr)
    snr_defined = torch.as_tensor(snr_defined, dtype=torch.bool).cpu()
    snr_t = smoothed_targets(delta_bins(torch.where(snr_defined, snr, 0.0), k, delta_max), k)
    loss_sdr = soft_cross_entropy(out["sisdr_probs"], sdr_t)
    loss_snr = soft_cross_entropy(out["snr_probs"], snr_t.to(dev), snr_defined.to(dev))
    return loss_p + loss_sdr + loss_snr
