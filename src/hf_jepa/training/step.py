"""The one train step shared by every script (pretraining, world model, probes)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.scheduler import AcceleratedScheduler
from torch import nn
from transformers.utils import ModelOutput

from .ema import ema_update

__all__ = ["ComputeLoss", "StepOutput", "train_step"]

logger = logging.getLogger(__name__)

#: ``compute_loss(outputs, batch) -> (loss, logs)``: scalar loss tensor and float metrics to log.
ComputeLoss = Callable[[ModelOutput, Mapping[str, Any]], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class StepOutput:
    """What one call of ``train_step`` (one micro-batch) did.

    Attributes:
        loss: this micro-batch's loss (not divided by the accumulation steps).
        grad_norm: total gradient norm before clipping, on sync steps with clipping; else None.
        logs: the ``compute_loss`` logs for this micro-batch.
        synced: True when this micro-batch ended an accumulation cycle, i.e. the optimizer stepped
            (or tried to: see ``accelerator.optimizer_step_was_skipped`` under fp16).
    """

    loss: float
    grad_norm: float | None
    logs: dict[str, float] = field(default_factory=dict)
    synced: bool = False


def _step_scheduler(lr_scheduler: Any) -> None:
    """Step the underlying scheduler once: one scheduler step per optimizer step, any process count."""
    if lr_scheduler is None:
        return
    if isinstance(lr_scheduler, AcceleratedScheduler):
        lr_scheduler = lr_scheduler.scheduler
    lr_scheduler.step()


def train_step(
    accelerator: Accelerator,
    model: nn.Module,
    batch: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | AcceleratedScheduler | None,
    *,
    compute_loss: ComputeLoss,
    max_grad_norm: float | None,
    ema_momentum: float | None,
) -> StepOutput:
    """Forward, loss, backward on one micro-batch; on sync steps clip, update, schedule and EMA.

    Inside ``accelerator.accumulate(model)``: forward and ``compute_loss`` under
    ``accelerator.autocast()``, ``accelerator.backward(loss)`` (which divides by the accumulation
    steps). When ``accelerator.sync_gradients``: ``clip_grad_norm_`` (if ``max_grad_norm``),
    ``optimizer.step()``, the lr scheduler steps once (unless an fp16 overflow skipped the update),
    ``optimizer.zero_grad()``; then, when ``ema_momentum`` is not None,
    ``ema_update(unwrapped.target_encoder, unwrapped.encoder, ema_momentum)`` on the unwrapped model.

    The scheduler is stepped directly (not through Accelerate's wrapper, which would step it
    ``num_processes`` times per update), so a schedule built with ``build_lr_scheduler`` sees the
    optimizer step.

    Args:
        accelerator: the Accelerator (its ``gradient_accumulation_steps`` drives sync).
        model: the prepared model; ``model(**batch)`` returns a ``ModelOutput``.
        batch: keyword inputs of the model, already on ``accelerator.device``.
        optimizer: the (prepared) optimizer.
        lr_scheduler: scheduler stepped once per optimizer step, or None.
        compute_loss: ``(outputs, batch) -> (loss, logs)``.
        max_grad_norm: clip the total gradient norm to this on sync steps; None or 0: no clipping.
        ema_momentum: momentum of the target-encoder EMA for this step; None: no EMA (e.g. SIGReg).

    Returns:
        StepOutput with the micro-batch loss, the grad norm (sync steps), logs and whether it synced.
    """
    grad_norm: float | None = None
    with accelerator.accumulate(model):
        with accelerator.autocast():
            outputs = model(**batch)
            loss, logs = compute_loss(outputs, batch)
        if loss.ndim != 0:
            raise ValueError(f"compute_loss must return a scalar loss, got loss.shape={tuple(loss.shape)}")
        accelerator.backward(loss)
        synced = accelerator.sync_gradients
        if synced:
            if max_grad_norm:
                norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
                grad_norm = float(norm) if norm is not None else None
            optimizer.step()
            if not accelerator.optimizer_step_was_skipped:
                _step_scheduler(lr_scheduler)
            optimizer.zero_grad(set_to_none=True)

    if synced and ema_momentum is not None:
        unwrapped = accelerator.unwrap_model(model)
        target = getattr(unwrapped, "target_encoder", None)
        if target is None:
            raise ValueError(
                f"ema_momentum={ema_momentum} but {type(unwrapped).__name__}.target_encoder is None or missing; "
                "pass ema_momentum=None for objectives without an EMA target (SIGReg)"
            )
        ema_update(target, unwrapped.encoder, ema_momentum)

    return StepOutput(
        loss=float(loss.detach()), grad_norm=grad_norm, logs={k: float(v) for k, v in logs.items()}, synced=synced
    )
