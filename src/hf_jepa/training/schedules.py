"""Learning-rate, weight-decay and EMA-momentum schedules as pure functions of the optimizer step.

A pure function of the step means resume needs nothing but the step: ``build_lr_scheduler`` wraps an lr
function in a ``LambdaLR``, ``HyperParamScheduler`` drives lr *and* weight decay from a ``Schedules``
triple; the state of either is ``last_epoch``, saved and restored by ``accelerator.save_state``.

``build_schedules(args)`` is the one entry point from a run's arguments (flags or a recipe YAML under
``configs/meta/``) to the three curves; the curve functions (``meta_warmup_cosine``, ``warmup_stable_decay``,
``linear_decay``, ``cosine_weight_decay``, ``linear_momentum``) are written in the order of operations of
Meta's ``src/utils/schedulers.py`` (I-JEPA and V-JEPA 2) so that their values agree to the last bits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

__all__ = [
    "LR_SCHEDULES",
    "HyperParamScheduler",
    "Schedules",
    "build_lr_scheduler",
    "build_schedules",
    "cosine_weight_decay",
    "linear_decay",
    "linear_momentum",
    "meta_warmup_cosine",
    "warmup_constant_decay",
    "warmup_cosine",
    "warmup_stable_decay",
]

#: Names accepted by ``--lr_schedule`` (see ``build_schedules``).
LR_SCHEDULES = ("warmup_cosine", "warmup_constant", "warmup_stable_decay", "linear_decay")


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


# ----------------------------------------------------------------------------------------------------------------
# Meta's curves, as pure functions of Meta's scheduler counter ``s`` (1 at the first optimizer update: Meta's
# schedulers step *before* the update). ``build_schedules`` maps our optimizer step ``k`` to ``s = k + offset``.


def meta_warmup_cosine(s: int, *, warmup_steps: int, total_steps: int, start_lr: float, peak_lr: float,
                       final_lr: float) -> float:
    """Meta's ``WarmupCosineSchedule`` value at counter ``s`` (I-JEPA; V-JEPA 2 pretraining with
    ``final_lr == peak_lr``, i.e. warmup then constant).

    ``s < warmup_steps``: linear ``start_lr -> peak_lr``; then a half cosine ``peak_lr -> final_lr`` over
    ``total_steps - warmup_steps`` counts, never below ``final_lr``. Past ``total_steps`` the value is held at
    ``final_lr`` (Meta's cosine would rise again; Meta's runs end before). A warmup longer than the run is allowed
    (Meta's V-JEPA 2 ViT-L/H configs have one): the run then ends inside the warmup.
    """
    if s < warmup_steps:
        progress = float(s) / float(max(1, warmup_steps))
        return start_lr + progress * (peak_lr - start_lr)
    if s >= total_steps:
        return final_lr
    progress = float(s - warmup_steps) / float(max(1, total_steps - warmup_steps))
    return max(final_lr, final_lr + (peak_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def warmup_stable_decay(s: int, *, warmup_steps: int, decay_steps: int, total_steps: int, start_lr: float,
                        peak_lr: float, final_lr: float) -> float:
    """Meta's ``WSDSchedule`` (V-JEPA 2-AC) at counter ``s``: linear warmup ``start_lr -> peak_lr`` over
    ``warmup_steps``, ``peak_lr`` until ``total_steps - decay_steps``, then linear ``peak_lr -> final_lr`` over
    ``decay_steps`` (Meta's ``anneal``); ``final_lr`` from ``total_steps`` on."""
    if s < warmup_steps:
        progress = float(s) / float(max(1, warmup_steps))
        return start_lr + progress * (peak_lr - start_lr)
    stable_end = total_steps - decay_steps
    if s < stable_end:
        return peak_lr
    if s >= total_steps:
        return final_lr
    progress = float(s - stable_end) / float(max(1, decay_steps))
    return peak_lr + progress * (final_lr - peak_lr)


def linear_decay(s: int, *, total_steps: int, peak_lr: float, final_lr: float) -> float:
    """Meta's ``LinearDecaySchedule`` (the V-JEPA 2 cool-down) at counter ``s``: ``peak_lr -> final_lr`` linearly
    over ``total_steps`` (Meta's ``int(ipe_scale * epochs * ipe)``, longer than the run: the cool-down of Meta's
    ViT-L config ends at ~1.06e-4, not at ``final_lr``); ``final_lr`` from ``total_steps`` on."""
    if s >= total_steps:
        return final_lr
    progress = float(s) / float(max(1, total_steps))
    return peak_lr + progress * (final_lr - peak_lr)


def cosine_weight_decay(s: int, *, total_steps: int, start: float, final: float) -> float:
    """Meta's ``CosineWDSchedule`` at counter ``s``: a half cosine ``start -> final`` over ``total_steps``, clamped
    to ``final`` (I-JEPA ramps 0.04 -> 0.4). Applied to the parameter groups that decay (not biases / 1-D)."""
    progress = min(s / total_steps, 1.0)
    value = final + (start - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(final, value) if final <= start else min(final, value)


def linear_momentum(k: int, *, total_steps: float, start: float, end: float) -> float:
    """Meta's EMA momentum generator (``ema[0] + i * (ema[1] - ema[0]) / (ipe * epochs * ipe_scale)``) at update
    ``k`` (0-based: the momentum has no one-step offset); ``end`` from ``total_steps`` on."""
    if k >= total_steps:
        return end
    return start + k * (end - start) / total_steps


class Schedules(NamedTuple):
    """The three curves of a run, each ``k -> value`` for the ``k``-th optimizer update (``k`` = updates done
    before it, 0-based), pure functions of ``k``.

    Attributes:
        lr: learning rate of update ``k``.
        weight_decay: weight decay of the decaying parameter groups at update ``k``.
        momentum: EMA target momentum applied after update ``k``; None without an EMA target (SIGReg,
            the world model).
    """

    lr: Callable[[int], float]
    weight_decay: Callable[[int], float]
    momentum: Callable[[int], float] | None


def _resolve_length(args: Any) -> int:
    length = getattr(args, "schedule_steps", None)
    return int(args.max_steps if length is None else length)


def check_schedule_args(args: Any) -> None:
    """Validate the schedule fields of a run's arguments (``build_schedules`` reads them); a ValueError naming the
    field, its value and the expectation. Runs before training starts (arguments' ``__post_init__``)."""
    name = getattr(args, "lr_schedule", None) or "warmup_cosine"
    if name not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule={name!r}: expected one of {', '.join(LR_SCHEDULES)}")
    length = _resolve_length(args)
    if length < 1:
        raise ValueError(f"schedule_steps={length}: expected >= 1 (the schedules' length; default max_steps)")
    warmup = getattr(args, "warmup_steps", 0) or 0
    if warmup < 0:
        raise ValueError(f"warmup_steps={warmup}: expected >= 0")
    offset = getattr(args, "schedule_offset", 0)
    if offset not in (0, 1):
        raise ValueError(f"schedule_offset={offset}: expected 0 (ours: update k uses f(k)) or 1 (Meta's schedulers "
                         "step before the update: update k uses f(k + 1))")
    if name == "linear_decay" and warmup:
        raise ValueError(f"warmup_steps={warmup}: expected 0 with lr_schedule='linear_decay' (Meta's cool-down has "
                         "no warmup)")
    if warmup > max(args.max_steps, length) and not getattr(args, "allow_warmup_past_end", False):
        raise ValueError(f"warmup_steps={warmup}: expected <= the run's length (max_steps={args.max_steps}, "
                         f"schedule_steps={length}); the lr would never reach learning_rate={args.learning_rate}. "
                         "Shorten the warmup, or pass --allow_warmup_past_end true to keep it (Meta's V-JEPA 2 "
                         "ViT-L/H pretraining configs end inside their warmup)")
    decay = getattr(args, "decay_steps", None)
    if name == "warmup_stable_decay" and decay is not None and not 0 <= decay <= length:
        raise ValueError(f"decay_steps={decay}: expected in [0, schedule_steps={length}]")
    if name == "warmup_stable_decay" and decay is not None and warmup + decay > length:
        raise ValueError(f"warmup_steps + decay_steps = {warmup} + {decay}: expected <= schedule_steps={length}")
    for field in ("weight_decay", "final_weight_decay"):
        value = getattr(args, field, None)
        if value is not None and not value >= 0:
            raise ValueError(f"{field}={value}: expected >= 0")


def build_schedules(args: Any) -> Schedules:
    """The lr / weight-decay / EMA-momentum curves of a run, from its arguments (``RunArguments`` and subclasses,
    filled from flags or a recipe YAML such as ``configs/meta/ijepa/in1k_vith14_ep300.yaml``).

    Fields read (``getattr`` with these defaults, so any object carrying them works):

    - ``lr_schedule`` (default ``"warmup_cosine"``): ``warmup_cosine`` (Meta's ``WarmupCosineSchedule``:
      ``start_lr -> learning_rate`` over ``warmup_steps``, cosine to ``final_lr`` at ``schedule_steps``);
      ``warmup_constant`` (the same with ``final_lr = learning_rate``: V-JEPA 2 pretraining);
      ``warmup_stable_decay`` (Meta's ``WSDSchedule``: linear to ``final_lr`` over the last ``decay_steps``;
      default ``decay_steps``: a tenth of ``schedule_steps``); ``linear_decay`` (Meta's ``LinearDecaySchedule``,
      the V-JEPA 2 cool-down: ``learning_rate -> final_lr`` over ``schedule_steps``, no warmup).
    - ``max_steps``; ``schedule_steps`` (None: ``max_steps``): the curves' length, Meta's
      ``int(ipe_scale * epochs * ipe)``, may exceed the run.
    - ``warmup_steps``, ``start_lr``, ``learning_rate``, ``final_lr``, ``decay_steps``.
    - ``weight_decay``, ``final_weight_decay`` (None: constant ``weight_decay``; else Meta's ``CosineWDSchedule``
      ``weight_decay -> final_weight_decay`` over ``schedule_steps``).
    - ``ema_start`` / ``ema_end`` (None or absent: ``momentum`` is None; else linear over ``schedule_steps``, as
      Meta's generator; ``objective == "sigreg"`` also gives None).
    - ``schedule_offset`` (0 or 1, default 0): 1 reproduces Meta's schedulers, which step before the update, so
      update ``k`` uses ``f(k + 1)`` for lr and weight decay (the momentum has no offset in Meta's code).

    Returns:
        ``Schedules(lr, weight_decay, momentum)``: functions of the optimizer update ``k >= 0`` (see
        ``Schedules``), pure, so an exact resume needs only the step.

    Raises:
        ValueError: see ``check_schedule_args`` (unknown schedule, warmup past the run, bad lengths).
    """
    check_schedule_args(args)
    name = getattr(args, "lr_schedule", None) or "warmup_cosine"
    length = _resolve_length(args)
    offset = int(getattr(args, "schedule_offset", 0))
    warmup = int(getattr(args, "warmup_steps", 0) or 0)
    start_lr, peak_lr, final_lr = float(args.start_lr), float(args.learning_rate), float(args.final_lr)
    if name == "warmup_cosine":
        curve = functools.partial(meta_warmup_cosine, warmup_steps=warmup, total_steps=length, start_lr=start_lr,
                                  peak_lr=peak_lr, final_lr=final_lr)
    elif name == "warmup_constant":
        curve = functools.partial(meta_warmup_cosine, warmup_steps=warmup, total_steps=length, start_lr=start_lr,
                                  peak_lr=peak_lr, final_lr=peak_lr)
    elif name == "warmup_stable_decay":
        decay = getattr(args, "decay_steps", None)
        decay = max(length // 10, 1) if decay is None else int(decay)
        decay = min(decay, max(length - warmup, 0))
        curve = functools.partial(warmup_stable_decay, warmup_steps=warmup, decay_steps=decay, total_steps=length,
                                  start_lr=start_lr, peak_lr=peak_lr, final_lr=final_lr)
    else:
        curve = functools.partial(linear_decay, total_steps=length, peak_lr=peak_lr, final_lr=final_lr)

    def lr(k: int) -> float:
        return curve(k + offset)

    wd_start = float(args.weight_decay)
    wd_final = getattr(args, "final_weight_decay", None)

    def weight_decay(k: int) -> float:
        if wd_final is None:
            return wd_start
        return cosine_weight_decay(k + offset, total_steps=length, start=wd_start, final=float(wd_final))

    momentum = None
    ema_start, ema_end = getattr(args, "ema_start", None), getattr(args, "ema_end", None)
    if ema_start is not None and ema_end is not None and getattr(args, "objective", "meta") != "sigreg":
        momentum = functools.partial(linear_momentum, total_steps=float(length), start=float(ema_start),
                                     end=float(ema_end))
    return Schedules(lr=lr, weight_decay=weight_decay, momentum=momentum)


class HyperParamScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Sets each param group's ``lr`` and, on groups that decay, ``weight_decay`` from a ``Schedules`` pair, once
    per optimizer step: after ``step()`` number ``k`` the groups hold the values of update ``k``.

    A group's lr is ``schedules.lr(k) * group["lr_scale"]`` (default scale 1); a group with
    ``group["no_weight_decay"]`` (see ``build_optimizer``: biases, norms, 1-D) keeps its weight decay. The state is
    ``last_epoch`` alone (the curves are pure functions of the step); ``load_state_dict`` re-applies the values of
    the restored step, so an exact resume stays exact.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedules: Schedules) -> None:
        self.schedules = schedules
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        k = max(self.last_epoch, 0)
        value = self.schedules.lr(k)
        return [value * group.get("lr_scale", 1.0) for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:  # noqa: D102 (LRScheduler.step)
        super().step(epoch)
        self._apply_weight_decay()

    def _apply_weight_decay(self) -> None:
        value = self.schedules.weight_decay(max(self.last_epoch, 0))
        for group in self.optimizer.param_groups:
            if not group.get("no_weight_decay", False):
                group["weight_decay"] = value

    def state_dict(self) -> dict[str, Any]:
        """``last_epoch`` and the LRScheduler bookkeeping (no functions)."""
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "schedules")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step and set the groups' lr / weight decay to that step's values."""
        self.__dict__.update(state_dict)
        for group, value in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = value
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        self._apply_weight_decay()
