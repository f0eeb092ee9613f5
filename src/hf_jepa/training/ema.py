"""Exponential moving average of the online encoder into the target encoder (I-JEPA / V-JEPA)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ema_momentum", "ema_update"]


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place: ``target_param = momentum * target_param + (1 - momentum) * online_param``.

    Parameters are matched by name (``named_parameters()``); buffers are left alone (the JEPA
    encoders have no running statistics). Works on the local tensors, so call it on the unwrapped
    model (``accelerator.unwrap_model(model)``), after the optimizer step, on sync steps only.

    Reference: Assran et al., I-JEPA (2023) ``src/train.py`` momentum update; Bardes et al., V-JEPA (2024).

    Args:
        target: EMA copy (e.g. ``model.target_encoder``), usually ``requires_grad=False``.
        online: the trained module (e.g. ``model.encoder``), same parameter names and shapes.
        momentum: in ``[0, 1]``; 1 keeps the target unchanged, 0 copies the online weights.

    Raises:
        ValueError: the momentum is out of range, or the parameter names / shapes differ.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got momentum={momentum}")
    target_params = dict(target.named_parameters())
    online_params = dict(online.named_parameters())
    if target_params.keys() != online_params.keys():
        only_target = sorted(target_params.keys() - online_params.keys())
        only_online = sorted(online_params.keys() - target_params.keys())
        raise ValueError(
            "ema_update: target and online parameter names differ; "
            f"only in target: {only_target[:10]}, only in online: {only_online[:10]}"
        )
    names = list(target_params)
    for name in names:
        if target_params[name].shape != online_params[name].shape:
            raise ValueError(
                f"ema_update: shape mismatch for parameter {name!r}: target {tuple(target_params[name].shape)} "
                f"vs online {tuple(online_params[name].shape)}"
            )
    if momentum == 1.0 or not names:
        return
    targets = [target_params[n].data for n in names]
    onlines = [online_params[n].data.to(dtype=target_params[n].dtype) for n in names]
    # lerp_(end, weight): target += weight * (online - target) == momentum * target + (1 - momentum) * online
    torch._foreach_lerp_(targets, onlines, 1.0 - momentum)


def ema_momentum(step: int, *, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """EMA momentum at optimizer step ``step``: linear from ``start`` to ``end`` over ``total_steps``.

    As in I-JEPA / V-JEPA (``momentum_scheduler``); Meta stretches the ramp by ``ipe_scale`` (1.25):
    fold that into ``total_steps``. Constant ``end`` after ``total_steps``. A pure function of the step,
    so resuming from a checkpoint gives the same momentum.

    Args:
        step: optimizer steps done so far, >= 0.
        total_steps: length of the ramp, > 0.
        start: momentum at step 0, in ``[0, 1]``.
        end: momentum from ``total_steps`` on, in ``[0, 1]``.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got step={step}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got total_steps={total_steps}")
    for field, value in (("start", start), ("end", end)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{field} must be in [0, 1], got {field}={value}")
    progress = min(step / total_steps, 1.0)
    return start + (end - start) * progress
