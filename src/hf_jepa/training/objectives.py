"""Objectives: turn a model's pretraining output into `(loss, logs)` for the shared train step.

- Meta's: I-JEPA smooth-L1, V-JEPA 2 L1 (mean over mask families), both on layer-normed EMA targets.
- SIGReg (LeJEPA, Balestriero & LeCun 2025): the same prediction loss with targets from the online encoder
  (no EMA) plus `weight * SIGReg` on the target-encoder token embeddings, which keeps them from collapsing.
- World model (V-JEPA 2-AC): L1 teacher forcing + L1 rollout (`auto_steps`), as Meta's `vjepa_droid` train loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .losses import jepa_l1_loss, jepa_smooth_l1_loss, sigreg_loss
from .step import ComputeLoss

FAMILIES = ("ijepa", "vjepa2")
OBJECTIVES = ("meta", "sigreg")
#: The regression loss of each family's prediction term (also the collapse monitors' constant baseline's).
PREDICTION_LOSSES = {"ijepa": jepa_smooth_l1_loss, "vjepa2": jepa_l1_loss}


def mask_groups(target_mask: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """A batch's ``target_mask`` as one (B, M_g) index tensor per mask group: (B, M) -> [it], (G, B, M) -> G
    tensors (I-JEPA's target blocks), a list (V-JEPA 2's mask families) -> itself."""
    if isinstance(target_mask, (list, tuple)):
        return list(target_mask)
    return list(target_mask) if target_mask.ndim == 3 else [target_mask]


def prediction_groups(outputs: Any) -> tuple[list[Tensor], list[Tensor]]:
    """A pretraining output's predictions and targets as one (B, M_g, D) pair per mask group.

    I-JEPA returns its G target blocks stacked block-major, (G*B, M, D), which is split into G; V-JEPA 2 returns a
    list already. Every objective and monitor reads the groups through this, whatever the family.
    """
    predictions, targets = outputs.predictions, outputs.targets
    if isinstance(predictions, (list, tuple)):
        return list(predictions), list(targets)
    groups = predictions.shape[0] // outputs.target_states.shape[0]  # (G*B, M, D) over (B, N, D)
    return list(predictions.chunk(groups)), list(targets.chunk(groups))  # G x (B, M, D) each


def _prediction_loss(family: str, outputs: Any) -> Tensor:
    """The family's regression loss (Meta's choice) averaged over the mask groups (equal to Meta's loss over the
    stacked I-JEPA blocks, which have equal sizes)."""
    loss_fn = PREDICTION_LOSSES[family]
    predictions, targets = prediction_groups(outputs)
    return torch.stack([loss_fn(predictions=p, targets=t) for p, t in zip(predictions, targets, strict=True)]).mean()


def pretraining_loss(family: str, objective: str = "meta", *, sigreg_weight: float = 0.05,
                     sigreg_slices: int = 256) -> ComputeLoss:
    """`compute_loss(outputs, batch) -> (loss, logs)` for `ImageJepaForPreTraining` / `VideoJepaForPreTraining`.

    Args:
        family: 'ijepa' or 'vjepa2'.
        objective: 'meta' (EMA target) or 'sigreg' (no EMA; the model must be built with use_ema_target=False).
        sigreg_weight: weight of the SIGReg term.
        sigreg_slices: random 1-D projections per SIGReg evaluation.
    """
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}: expected one of {list(FAMILIES)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective={objective!r}: expected one of {list(OBJECTIVES)}")
    if sigreg_weight < 0:
        raise ValueError(f"sigreg_weight={sigreg_weight}: expected >= 0")

    def compute_loss(outputs: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        pred = _prediction_loss(family, outputs)
        if objective == "meta":
            return pred, {"prediction_loss": pred.item()}
        tokens = outputs.target_states.flatten(0, 1)  # (B*N, D)
        reg = sigreg_loss(embeddings=tokens, num_slices=sigreg_slices)
        return pred + sigreg_weight * reg, {"prediction_loss": pred.item(), "sigreg": reg.item()}

    return compute_loss


def world_model_loss(outputs: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
    """Meta's V-JEPA 2-AC objective: L1(teacher forced, targets) + L1(rollout, first R targets)."""
    n_rollout = outputs.rollout.shape[1]
    teacher = jepa_l1_loss(predictions=outputs.teacher_forced, targets=outputs.targets)
    rollout = jepa_l1_loss(predictions=outputs.rollout, targets=outputs.targets[:, :n_rollout])
    return teacher + rollout, {"teacher_forcing_loss": teacher.item(), "rollout_loss": rollout.item()}
