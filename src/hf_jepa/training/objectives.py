"""Objectives: turn a model's pretraining output into `(loss, logs)` for the shared train step.

- Meta's: I-JEPA smooth-L1, V-JEPA 2 L1 (mean over mask families), both on layer-normed EMA targets.
- SIGReg (LeJEPA, Balestriero & LeCun 2025): the same prediction loss with targets from the online encoder
  (no EMA) plus `weight * SIGReg` on the target-encoder token embeddings, which keeps them from collapsing.
- World model (V-JEPA 2-AC): L1 teacher forcing + L1 rollout (`auto_steps`), as Meta's `vjepa_droid` train loop.
- V-JEPA 2.1 (`DenseHierarchicalLoss`): L1 on the 4-level layer-normed targets of the masked tokens plus a dense
  L1 on the context tokens, optionally weighted by 1 / sqrt(distance to the nearest target token), whose weight
  ramps in linearly (`context_loss_weight`); step-aware through `set_step`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .losses import (
    context_distance_weights,
    jepa_l1_loss,
    jepa_smooth_l1_loss,
    sigreg_loss,
    weighted_jepa_l1_loss,
)
from .step import ComputeLoss

FAMILIES = ("ijepa", "vjepa2", "vjepa2_1")
OBJECTIVES = ("meta", "sigreg")
#: The regression loss of each family's prediction term (also the collapse monitors' constant baseline's).
PREDICTION_LOSSES = {"ijepa": jepa_smooth_l1_loss, "vjepa2": jepa_l1_loss, "vjepa2_1": jepa_l1_loss}


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
        family: 'ijepa', 'vjepa2' or 'vjepa2_1' (Meta's 2.1 objective with its defaults: `DenseHierarchicalLoss`).
        objective: 'meta' (EMA target) or 'sigreg' (no EMA; the model must be built with use_ema_target=False).
        sigreg_weight: weight of the SIGReg term.
        sigreg_slices: random 1-D projections per SIGReg evaluation.
    """
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}: expected one of {list(FAMILIES)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective={objective!r}: expected one of {list(OBJECTIVES)}")
    if family == "vjepa2_1":
        if objective != "meta":
            raise ValueError(f"objective={objective!r} with family='vjepa2_1': expected 'meta' (V-JEPA 2.1's dense "
                             "hierarchical objective; use DenseHierarchicalLoss for its settings)")
        return DenseHierarchicalLoss()
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


def context_loss_weight(step: int, *, value: float = 0.5, start: int = 15_000, end: int = 30_000) -> float:
    """V-JEPA 2.1's context-loss weight at optimizer step `step` (0-based): 0 before `start`, linear from 0 to
    `value` over [start, end), `value` from `end` on (Meta's `Lambda_LinearWarmupHold`, defaults of its configs:
    `lambda_value_vid` / `lambda_value_img` 0.5, ramp 15k -> 30k)."""
    if not end > start:
        raise ValueError(f"end={end}: expected > start={start}")
    if step < start:
        return 0.0
    if step >= end:
        return float(value)
    return float(value) * (step - start) / (end - start)


class DenseHierarchicalLoss:
    """V-JEPA 2.1's objective for `VideoJepa21ForPreTraining` outputs: `(outputs, batch) -> (loss, logs)`.

    loss = mean over mask families of L1(predictions, targets)
         + context_loss_weight(step) * mean over mask families of L1(context predictions, context targets)
           [each token weighted by 1 / sqrt(distance to the nearest target token) with `distance_weighting`].

    Targets are the EMA target encoder's levels, each layer-normed without affine (the model builds them). The loop
    calls `set_step(global_step)` before each optimizer step, so the ramp follows the run (and a resumed run).

    Reference: V-JEPA 2.1, ``app/vjepa_2_1/train.py::train_step`` (``loss_fn``, ``compute_mask_distance``,
    ``Lambda_LinearWarmupHold``).

    Args:
        context_weight: the weight after the ramp (Meta: 0.5, images and videos).
        ramp_start, ramp_end: the linear ramp's steps (Meta: 15,000 -> 30,000).
        ramp: False: `context_weight` from step 0 (Meta's `lambda_progressive=False`).
        distance_weighting: weight context tokens by 1 / sqrt(distance) (Meta's `weight_distance_loss`, on in its
            configs).
        offset_context_loss: divide distances by the grid side // 16 first (Meta's `offset_context_loss`).
        exponent: Meta's `loss_exp` (1: L1).
    """

    def __init__(self, *, context_weight: float = 0.5, ramp_start: int = 15_000, ramp_end: int = 30_000,
                 ramp: bool = True, distance_weighting: bool = True, offset_context_loss: bool = False,
                 exponent: float = 1.0) -> None:
        if context_weight < 0:
            raise ValueError(f"context_weight={context_weight}: expected >= 0")
        context_loss_weight(0, value=context_weight, start=ramp_start, end=ramp_end)  # validates the ramp
        self.context_weight, self.ramp_start, self.ramp_end, self.ramp = context_weight, ramp_start, ramp_end, ramp
        self.distance_weighting, self.offset_context_loss, self.exponent = (distance_weighting, offset_context_loss,
                                                                            exponent)
        self.step = 0

    def set_step(self, step: int) -> None:
        """The optimizer step (0-based) the next calls belong to."""
        self.step = int(step)

    def weight(self) -> float:
        """The context-loss weight at the current step."""
        if not self.ramp:
            return float(self.context_weight)
        return context_loss_weight(self.step, value=self.context_weight, start=self.ramp_start, end=self.ramp_end)

    def __call__(self, outputs: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        predictions, targets = prediction_groups(outputs)
        pred = torch.stack([jepa_l1_loss(predictions=p, targets=t, exponent=self.exponent)
                            for p, t in zip(predictions, targets, strict=True)]).mean()
        logs = {"prediction_loss": pred.item()}
        if outputs.context_predictions is None:
            return pred, logs
        contexts, target_masks = mask_groups(batch["context_mask"]), mask_groups(batch["target_mask"])
        terms = []
        for z, h, ctx, tgt in zip(outputs.context_predictions, outputs.context_targets, contexts, target_masks,
                                  strict=True):
            weights = None
            if self.distance_weighting:
                offset = outputs.grid[1] // 16 if self.offset_context_loss else None
                weights = context_distance_weights(context_mask=ctx, target_mask=tgt, grid=outputs.grid,
                                                   offset_scale=offset)
            terms.append(weighted_jepa_l1_loss(predictions=z, targets=h, weights=weights, exponent=self.exponent))
        context = torch.stack(terms).mean()
        weight = self.weight()
        logs.update(context_loss=context.item(), context_loss_weight=weight)
        return pred + weight * context, logs
