"""Goal-image planning with a V-JEPA 2-AC world model: images -> latents -> KV-cached rollouts -> CEM / MPPI.

`WorldModelPlanner.plan(observation, goal, state)` encodes the current and goal images once, then scores each
candidate action sequence by the distance between the latents of the last predicted frame and the goal latents
(L1 as Meta's V-JEPA 2-AC, MSE as LeWM). `plan_fn()` adapts it to `hf_jepa.planning.run_mpc`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from hf_jepa.planning import CEMConfig, MPPIConfig, PlanFn, PlanResult, cem, latent_energy, mppi, shift_plan
from hf_jepa.world_model_training import frame_transform

logger = logging.getLogger(__name__)


def frames_to_tensor(frames: np.ndarray | Tensor, model: JepaWorldModel) -> Tensor:
    """uint8 frames (H, W, 3), (T, H, W, 3) or (T, 3, H, W) -> float (1, T, 3, S, S) normalised for the encoder.

    Resizes to the encoder's `image_size` (no crop: the whole scene matters for planning) and normalises with the
    encoder config's `image_mean` / `image_std`, the same transform the world-model training data uses.
    """
    x = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, Tensor) else frames
    if x.dtype != torch.uint8:
        raise ValueError(f"frames: expected uint8 images, got dtype {x.dtype}")
    if x.dim() == 3:
        x = x[None]  # (1, H, W, 3) or (1, 3, H, W)
    if x.dim() != 4:
        raise ValueError(f"frames: expected (H, W, 3), (T, H, W, 3) or (T, 3, H, W), got {tuple(x.shape)}")
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)  # (T, H, W, 3) -> (T, 3, H, W)
    return frame_transform(model)(x.contiguous())[None]  # (1, T, 3, S, S)


@dataclass
class WorldModelPlanner:
    """Plan toward a goal image with a `JepaWorldModel`.

    Args:
        model: the world model (eval mode is set here).
        config: `CEMConfig` or `MPPIConfig` (its horizon H is the rollout length).
        energy: 'l1' (Meta) or 'mse' (LeWM) between predicted and goal latents.
        reduction: 'last' scores the last predicted frame (Meta, LeWM); 'mean' averages the distance over every
            predicted frame (EB-JEPA's ``sum_all_diffs``: prefers plans that get close early and stay close).
        use_cache: KV-cached rollouts (True) or Meta's full recomputation per step (False); same energies.
        warm_start: start each replan from the previous plan shifted by one step.
        device: where the model runs.
    """

    model: JepaWorldModel
    config: CEMConfig | MPPIConfig
    energy: Literal["l1", "mse"] = "l1"
    reduction: Literal["last", "mean"] = "last"
    use_cache: bool = True
    warm_start: bool = True
    device: str | torch.device = "cpu"
    _previous: Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.energy not in ("l1", "mse"):
            raise ValueError(f"energy={self.energy!r}: expected 'l1' or 'mse'")
        if self.reduction not in ("last", "mean"):
            raise ValueError(f"reduction={self.reduction!r}: expected 'last' or 'mean'")
        self.model = self.model.to(self.device).eval()

    @torch.no_grad()
    def encode(self, frames: np.ndarray | Tensor) -> Tensor:
        """uint8 frame(s) -> (1, T*N, D) latents."""
        return self.model.encode(frames_to_tensor(frames, self.model).to(self.device))

    def reset(self) -> None:
        """Forget the warm-start plan (call at the start of an episode)."""
        self._previous = None

    def energy_fn(self, context: Tensor, state: Tensor, goal: Tensor) -> Any:
        """Energy of (S, H, A) candidate sequences from context latents (1, N, D), state (S_dim,), goal (1, N, D)."""
        n = goal.shape[1]

        @torch.no_grad()
        def fn(actions: Tensor) -> Tensor:
            s = actions.shape[0]
            preds = self.model.rollout(context.expand(s, -1, -1), actions.to(self.device),
                                       state.view(1, 1, -1).expand(s, 1, -1), use_cache=self.use_cache)
            if self.reduction == "last":
                return latent_energy(preds[:, -n:], goal[0], kind=self.energy).cpu()  # (S,)
            per_frame = preds.reshape(s * actions.shape[1], n, -1)  # (S, H*N, D) -> (S*H, N, D)
            return latent_energy(per_frame, goal[0], kind=self.energy).view(s, -1).mean(1).cpu()  # (S,)

        return fn

    @torch.no_grad()
    def plan(self, observation: np.ndarray | Tensor, goal: np.ndarray | Tensor,
             state: np.ndarray | Tensor, *, generator: torch.Generator | None = None,
             goal_latents: Tensor | None = None) -> PlanResult:
        """Plan H actions from an observation image and its state toward a goal image (or its latents)."""
        context = self.encode(observation)
        goal_z = goal_latents if goal_latents is not None else self.encode(goal)
        state_t = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=self.device).reshape(-1)
        if state_t.numel() != self.model.config.state_dim:
            raise ValueError(f"state: expected {self.model.config.state_dim} values, got {state_t.numel()}")
        generator = generator or self.config.make_generator()
        init = shift_plan(self._previous) if (self.warm_start and self._previous is not None) else None
        search = cem if isinstance(self.config, CEMConfig) else mppi
        result = search(self.energy_fn(context, state_t, goal_z), self.config,
                        action_dim=self.model.config.action_dim, generator=generator, init_mean=init)
        self._previous = result.actions
        return result

    def plan_fn(self, *, seed: int = 0, action_repeat: int = 1) -> PlanFn:
        """A `run_mpc` plan function: (observation, goal_observation, info) -> PlanResult, using info['state'].

        Args:
            seed: seeds the planner's generator once for the whole episode.
            action_repeat: env steps per planned action (the model's `frame_skip` k). A planned action is the sum
                of k env actions (what the model was trained on), so each becomes k env actions of action / k:
                the returned plan has (H * k, A) actions.
        """
        if action_repeat < 1:
            raise ValueError(f"action_repeat={action_repeat}: expected >= 1")
        generator = torch.Generator().manual_seed(seed)
        cache: dict[str, Tensor] = {}

        def fn(observation: Any, goal: Any, info: Mapping[str, Any]) -> PlanResult:
            key = hashlib.sha1(np.ascontiguousarray(goal).tobytes()).hexdigest()
            if key not in cache:  # the goal image is fixed for an episode: encode it once
                cache.clear()
                cache[key] = self.encode(goal)
            result = self.plan(observation, goal, info["state"], generator=generator, goal_latents=cache[key])
            if action_repeat == 1:
                return result
            env_actions = (result.actions / action_repeat).repeat_interleave(action_repeat, dim=0)  # (H*k, A)
            return dataclasses.replace(result, actions=env_actions)

        return fn
