"""The energy a planner minimises with a JEPA world model: a distance between predicted and goal latents."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

__all__ = ["latent_energy"]


def latent_energy(pred: Tensor, goal: Tensor, *, kind: Literal["l1", "mse"] = "l1") -> Tensor:
    """Distance between predicted and goal latents, one value per candidate.

    ``l1``: mean absolute difference over tokens and channels (V-JEPA 2-AC, ``mpc_utils.l1`` on the
    flattened final frame). ``mse``: mean squared difference (LeWM / DINO-WM).

    Args:
        pred: ``(S, N, D)`` predicted latents (``N`` tokens of size ``D``); any ``(S, ...)`` works.
        goal: ``(N, D)`` shared by every candidate, or ``(S, N, D)``.
        kind: ``"l1"`` or ``"mse"``.

    Returns:
        ``(S,)`` energies (lower is closer to the goal).
    """
    if pred.ndim < 2:
        raise ValueError(f"pred must be (S, N, D), got shape {tuple(pred.shape)}")
    if goal.shape == pred.shape[1:]:
        goal = goal.unsqueeze(0)  # (1, N, D)
    elif goal.shape != pred.shape:
        raise ValueError(
            f"goal shape {tuple(goal.shape)} does not match pred {tuple(pred.shape)}: expected "
            f"{tuple(pred.shape[1:])} or {tuple(pred.shape)}"
        )
    diff = (pred - goal).flatten(1)  # (S, N*D)
    if kind == "l1":
        return diff.abs().mean(dim=1)
    if kind == "mse":
        return diff.square().mean(dim=1)
    raise ValueError(f"kind={kind!r} is invalid: expected 'l1' or 'mse'.")
