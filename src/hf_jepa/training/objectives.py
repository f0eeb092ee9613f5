"""Objectives: turn a model's pretraining output into `(loss, logs)` for the shared train step.

- Meta's: I-JEPA smooth-L1, V-JEPA 2 L1 (mean over mask families), both on layer-normed EMA targets.
- SIGReg (LeJEPA, Balestriero & LeCun 2025): the same prediction loss with targets from the online encoder
  (no EMA) plus `weight * SIGReg` on the target-encoder token embeddings, which keeps them from collapsing.
- World model (V-JEPA 2-AC): L1 teacher forcing + L1 rollout (`auto_steps`), as Meta's `vjepa_droid` train loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .losses import jepa_l1_loss, jepa_smooth_l1_loss, sigreg_loss
from .step import ComputeLoss

FAMILIES = ("ijepa", "vjepa2")
OBJECTIVES = ("meta", "sigreg")
#: The regression loss of each family's prediction term (also the collapse monitors' constant baseline's).
PREDICTION_LOSSES = {"ijepa": jepa_smooth_l1_loss, "vjepa2": jepa_l1_loss}


def _prediction_loss(family: str, outputs: Any) -> Tensor:
    loss_fn = PREDICTION_LOSSES[family]
    if family == "ijepa":
        return loss_fn(predictions=outputs.predictions, targets=outputs.targets)
    losses = [loss_fn(predictions=p, targets=t) for p, t in zip(outputs.predictions, outputs.targets, strict=True)]
    return torch.stack(losses).mean()


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
