"""AdamW with the usual ViT / JEPA weight-decay split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .rank_logging import get_logger

__all__ = ["DEFAULT_NO_WEIGHT_DECAY_NAMES", "build_optimizer", "split_weight_decay_params"]

logger = get_logger(__name__)  # main process only under accelerate launch

#: Substrings of parameter names that never get weight decay (besides biases and 1-D params).
DEFAULT_NO_WEIGHT_DECAY_NAMES: tuple[str, ...] = ("mask_token", "pos_embed")


def split_weight_decay_params(
    model: nn.Module, *, no_weight_decay_names: Sequence[str] = DEFAULT_NO_WEIGHT_DECAY_NAMES
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters split into ``(decay, no_decay)``.

    No decay: biases, norm weights and every other parameter with ``ndim <= 1`` (as in I-JEPA /
    V-JEPA), and any parameter whose name contains one of ``no_weight_decay_names``. Frozen
    parameters (``requires_grad=False``, e.g. the EMA target encoder) are left out.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or any(key in name for key in no_weight_decay_names):
            no_decay.append(param)
        else:
            decay.append(param)
    return decay, no_decay


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    no_weight_decay_names: Sequence[str] = DEFAULT_NO_WEIGHT_DECAY_NAMES,
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, in two groups: with and without weight decay.

    See ``split_weight_decay_params`` for the split. Set ``lr`` to the schedule's peak and drive it
    with ``build_lr_scheduler`` (or ``HyperParamScheduler``, which also schedules the weight decay of
    group 0). Group 0 decays (``weight_decay``), group 1 does not (it carries ``no_weight_decay=True``); an
    empty group is dropped.

    Args:
        model: the (unwrapped) model.
        lr: base / peak learning rate, > 0.
        weight_decay: decoupled weight decay for group 0, >= 0.
        betas: Adam betas, each in ``[0, 1)``.
        eps: Adam epsilon, > 0.
        no_weight_decay_names: name substrings exempt from weight decay.

    Raises:
        ValueError: bad hyper-parameters, or the model has no trainable parameter.
    """
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got lr={lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got weight_decay={weight_decay}")
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two floats in [0, 1), got betas={betas}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got eps={eps}")
    decay, no_decay = split_weight_decay_params(model, no_weight_decay_names=no_weight_decay_names)
    # "no_weight_decay" marks the group a weight-decay schedule leaves alone (HyperParamScheduler)
    groups = [
        {"params": params, "weight_decay": wd, "no_weight_decay": exempt}
        for params, wd, exempt in ((decay, weight_decay, False), (no_decay, 0.0, True)) if params
    ]
    if not groups:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters")
    logger.info(
        "AdamW: %d tensors (%d params) with weight decay %g, %d tensors (%d params) without",
        len(decay),
        sum(p.numel() for p in decay),
        weight_decay,
        len(no_decay),
        sum(p.numel() for p in no_decay),
    )
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
