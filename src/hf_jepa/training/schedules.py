"""Learning-rate schedules as pure functions of the optimizer step, and a LambdaLR built on them.

A pure function of the step means resume needs nothing but the step: ``build_lr_scheduler`` wraps
one in a ``LambdaLR`` whose state (``last_epoch``) is saved and restored by ``accelerator.save_state``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

__all__ = ["build_lr_scheduler", "warmup_constant_decay", "warmup_cosine"]


def _check_step(step: int) -> None:
    if step < 0:
        raise ValueError(f"step must be >= 0, got step={step}")


def _check_common(warmup_steps: int, total_steps: int, start_lr: float, peak_lr: float, final_lr: float) -> None:
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got total_steps={total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got warmup_steps={warmup_steps}")
    for field, value in (("start_lr", start_lr), ("peak_lr", peak_lr), ("final_lr", final_lr)):
        if not value >= 0:
            raise ValueError(f"{field} must be >= 0, got {field}={value}")
    if not peak_lr > 0:
        raise ValueError(f"peak_lr must be > 0, got peak_lr={peak_lr}")


def warmup_cosine(
    step: int, *, warmup_steps: int, total_steps: int, start_lr: float, peak_lr: float, final_lr: float
) -> float:
    """I-JEPA schedule: linear warmup ``start_lr -> peak_lr``, then half-cosine ``peak_lr -> final_lr``.

    Matches I-JEPA's ``WarmupCosineSchedule`` (``src/utils/schedulers.py``) with ``T_max = total_steps``
    (Meta's ``ipe_scale * epochs * ipe``: fold the scale into ``total_steps``), except that the cosine is
    held at ``final_lr`` after ``total_steps`` instead of rising again.

    Args:
        step: optimizer steps done so far (the lr for the next update), >= 0.
        warmup_steps: linear warmup length, ``0 <= warmup_steps <= total_steps``.
        total_steps: end of the cosine, > 0.
        start_lr: lr at step 0.
        peak_lr: lr at the end of warmup, > 0.
        final_lr: lr at ``total_steps`` and after.
    """
    _check_step(step)
    _check_common(warmup_steps, total_steps, start_lr, peak_lr, final_lr)
    if step < warmup_steps:
        return start_lr + (peak_lr - start_lr) * step / warmup_steps
    progress = min((step - warmup_steps) / max(1, total_steps - warmup_steps), 1.0)
    return final_lr + (peak_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_constant_decay(
    step: int,
    *,
    warmup_steps: int,
    total_steps: int,
    decay_steps: int,
    start_lr: float,
    peak_lr: float,
    final_lr: float,
) -> float:
    """V-JEPA 2 schedule: linear warmup, constant ``peak_lr``, linear cool-down to ``final_lr`` at the end.

    Phases: ``[0, warmup_steps)`` linear ``start_lr -> peak_lr``; ``[warmup_steps, total_steps - decay_steps)``
    constant ``peak_lr``; ``[total_steps - decay_steps, total_steps]`` linear ``peak_lr -> final_lr``;
    ``final_lr`` afterwards. Reference: Assran et al., "V-JEPA 2" (2025), Sec. 2 (warmup-constant-decay,
    the cool-down phase at the end of pretraining).

    Args:
        step: optimizer steps done so far, >= 0.
        warmup_steps: >= 0.
        total_steps: > 0.
        decay_steps: length of the cool-down, ``warmup_steps + decay_steps <= total_steps``.
        start_lr: lr at step 0.
        peak_lr: plateau lr, > 0.
        final_lr: lr at ``total_steps`` and after.
    """
    _check_step(step)
    _check_common(warmup_steps, total_steps, start_lr, peak_lr, final_lr)
    if decay_steps < 0:
        raise ValueError(f"decay_steps must be >= 0, got decay_steps={decay_steps}")
    if warmup_steps + decay_steps > total_steps:
        raise ValueError(
            f"warmup_steps + decay_steps must be <= total_steps={total_steps}, "
            f"got warmup_steps={warmup_steps}, decay_steps={decay_steps}"
        )
    decay_start = total_steps - decay_steps
    if step < warmup_steps:
        return start_lr + (peak_lr - start_lr) * step / warmup_steps
    if step < decay_start:
        return peak_lr
    if step >= total_steps:
        return final_lr
    return peak_lr + (final_lr - peak_lr) * (step - decay_start) / decay_steps


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, fn: Callable[[int], float], *, peak_lr: float | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """Wrap a step -> lr function in a ``LambdaLR`` (multiplier ``fn(step) / peak_lr``).

    Each param group's lr becomes ``group_lr * fn(step) / peak_lr``: with the optimizer built at
    ``lr=peak_lr`` that is exactly ``fn(step)``, and groups at other lrs keep their ratio. The
    scheduler's state is just ``last_epoch``, so it saves / loads with ``accelerator.save_state``.
    Use ``functools.partial(warmup_cosine, warmup_steps=..., ...)`` for ``fn``.

    Step it once per optimizer step (``train_step`` does; it bypasses Accelerate's habit of stepping
    a prepared scheduler ``num_processes`` times per update, so ``step`` is the optimizer step).

    Args:
        optimizer: optimizer whose groups' current ``lr`` is the peak (e.g. ``build_optimizer(lr=peak)``).
        fn: pure function of the optimizer step returning the lr.
        peak_lr: lr that ``fn`` is relative to; default: ``fn.keywords["peak_lr"]`` for a
            ``functools.partial``, else the largest group lr.
    """
    if peak_lr is None and isinstance(fn, functools.partial):
        peak_lr = fn.keywords.get("peak_lr")
    if peak_lr is None:
        peak_lr = max(group.get("initial_lr", group["lr"]) for group in optimizer.param_groups)
    if not peak_lr > 0:
        raise ValueError(f"peak_lr must be > 0, got peak_lr={peak_lr}")
    fn(0)  # fail early on bad schedule arguments

    def multiplier(step: int) -> float:
        return fn(step) / peak_lr

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
