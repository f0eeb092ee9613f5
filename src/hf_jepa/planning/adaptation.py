"""Test-time adaptation of a world model's predictor on the transitions an MPC episode observes.

A frozen world model can be systematically wrong at one place (in Two-Rooms: it predicts the agent through the
wall beside the door), and a planner then repeats the action it mispredicts, replan after replan. The executed
transitions tell the truth: after each control cycle, `OnlineAdaptation.observe` adds (previous latents, executed
action, current latents) to the episode's memory and takes a few gradient steps of the training objective
(teacher-forcing L1, `hf_jepa.training.world_model_loss`, through the shared `train_step`) on every transition
so far, so the next plan is scored by a model that has seen where the last one went wrong. This is gradient-based
online model adaptation as in model-based RL (Nagabandi et al., 2019, "Learning to Adapt in Dynamic, Real-World
Environments"), here without meta-training. `reset()` restores the trained weights, so episodes are independent.
"""

from __future__ import annotations

import logging

import torch
from accelerate import Accelerator
from torch import Tensor

from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from hf_jepa.training import build_optimizer, world_model_loss
from hf_jepa.training.step import train_step

logger = logging.getLogger(__name__)

ADAPT_STEPS = 10
"""Gradient steps per executed action in the Two-Rooms recipe (`evaluate_planning`, its script, the Space)."""
ADAPT_LR = 1e-4
"""Their learning rate. Stronger adaptation overfits the episode: on a demo model, 20 steps at 1e-3 solved 7 of the
first 22 evaluation episodes, 10 steps at 1e-4 solved 40 of 50."""


class OnlineAdaptation:
    """Fine-tunes `model.predictor` on one episode's observed transitions (one planned action each).

    Args:
        model: the world model whose predictor adapts in place (the encoder stays frozen).
        steps: gradient steps after each new transition (>= 1).
        lr: AdamW learning rate of those steps (no weight decay).
        memory: transitions kept (the most recent); each step trains on all of them as one batch.
    """

    def __init__(self, model: JepaWorldModel, *, steps: int, lr: float = ADAPT_LR, memory: int = 32) -> None:
        for name, value in (("steps", steps), ("memory", memory)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"adaptation {name}={value!r}: expected an int >= 1")
        if not lr > 0:
            raise ValueError(f"adaptation lr={lr!r}: expected > 0")
        self.model, self.steps, self.lr, self.memory = model, steps, lr, memory
        self._trained = {k: v.detach().clone() for k, v in model.predictor.state_dict().items()}
        self._accelerator = Accelerator()  # train_step's contract; no prepare(): the model stays where it is
        self._previous: tuple[Tensor, Tensor] | None = None  # latents (1, N, D), state (S,) of the last frame
        self._transitions: list[tuple[Tensor, Tensor, Tensor]] = []  # latents (2N, D), action (A,), states (2, S)
        self._optimizer = self._new_optimizer()
        self.last_loss: float | None = None

    def _new_optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(self.model.predictor, lr=self.lr, weight_decay=0.0)

    def reset(self) -> None:
        """Restore the trained predictor weights and forget the episode (call at every episode start)."""
        self.model.predictor.load_state_dict(self._trained)
        self._optimizer = self._new_optimizer()
        self._previous = None
        self._transitions.clear()
        self.last_loss = None

    @property
    def num_transitions(self) -> int:
        """Transitions in the memory."""
        return len(self._transitions)

    def observe(self, latents: Tensor, state: Tensor, executed: Tensor | None) -> None:
        """Record the current frame; when an action led to it, adapt on the episode's transitions.

        Args:
            latents: (1, N, D) latents of the current frame.
            state: (S,) its state.
            executed: (A,) the planned action executed since the previous `observe` (None at the episode start).
        """
        if executed is not None and self._previous is not None:
            z0, s0 = self._previous
            s1 = s0 if self.model.config.state_update == "hold" else state  # as in training ('hold': first state)
            self._transitions.append((torch.cat([z0[0], latents[0]]), executed.reshape(-1), torch.stack([s0, s1])))
            del self._transitions[: -self.memory]
            self._adapt()
        self._previous = (latents.detach(), state.detach())

    def _adapt(self) -> None:
        latents = torch.stack([z for z, _, _ in self._transitions])  # (M, 2N, D)
        actions = torch.stack([a for _, a, _ in self._transitions])[:, None]  # (M, A) -> (M, 1, A)
        states = torch.stack([s for _, _, s in self._transitions])  # (M, 2, S)
        batch = {"latents": latents, "actions": actions, "states": states, "auto_steps": 1}
        with torch.enable_grad():
            for _ in range(self.steps):
                out = train_step(self._accelerator, self.model, batch, self._optimizer, None,
                                 compute_loss=world_model_loss, max_grad_norm=None, ema_momentum=None)
        self.last_loss = out.loss
        logger.debug("adapted on %d transitions: loss %.4f", len(self._transitions), out.loss)


__all__ = ["ADAPT_LR", "ADAPT_STEPS", "OnlineAdaptation"]
