"""Goal-image planning with a V-JEPA 2-AC world model: images -> latents -> KV-cached rollouts -> CEM / MPPI.

`WorldModelPlanner.plan(observation, goal, state)` encodes the current and goal images once, then scores each
candidate action sequence by the distance between the latents of the last predicted frame and the goal latents
(L1 as Meta's V-JEPA 2-AC, MSE as LeWM). `plan_fn()` adapts it to `hf_jepa.planning.mpc.run_mpc`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from hf_jepa.data.transforms import frame_transform
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from hf_jepa.planning.adaptation import ADAPT_LR, OnlineAdaptation
from hf_jepa.planning.configs import CEMConfig, MPPIConfig
from hf_jepa.planning.energy import latent_energy
from hf_jepa.planning.mpc import PlanFn
from hf_jepa.planning.search import PlanResult, cem, mppi, shift_plan
from hf_jepa.planning.subgoals import LatentSubgoalGraph

logger = logging.getLogger(__name__)


REDUCTIONS = ("last", "ramp", "mean")
RAMP_FIRST = 0.1
"""Weight of the first predicted frame under reduction='ramp' (PLDM's `loss_coeff_first`); the last has 1."""


def frame_weights(reduction: str, horizon: int, device: torch.device | str = "cpu") -> Tensor:
    """(H,) weights of the predicted frames' energies under `reduction` ('last', 'ramp' or 'mean')."""
    if reduction == "last":
        weights = torch.zeros(horizon, device=device)  # (H,)
        weights[-1] = 1.0
        return weights
    if reduction == "ramp":
        return torch.linspace(RAMP_FIRST, 1.0, horizon, device=device)  # (H,)
    return torch.ones(horizon, device=device)  # (H,)


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
        reduction: 'last' scores the last predicted frame (Meta, LeWM); 'ramp' weighs frame h of H by a linear
            ramp from 0.1 to 1 (PLDM's `loss_coeff_first` / `loss_coeff_last`: the end dominates, yet earlier
            progress counts, so MPC's first action is not left to noise); 'mean' averages the distance over every
            predicted frame (EB-JEPA's ``sum_all_diffs``: prefers plans that get close early and stay close).
        use_cache: KV-cached rollouts (True) or Meta's full recomputation per step (False); same energies.
        warm_start: start each replan from the previous plan shifted by one step.
        context_frames: observed frames the rollouts start from: the current one plus up to
            `context_frames - 1` earlier ones, with the planned actions executed between them (the model's
            teacher-forcing regime). Assumes one planned action is executed per plan (MPC with replan_every=1).
            With the cache, the history's keys/values are computed once per candidate batch and broadcast to
            every sample (`rollout(shared_prefix=...)`); recomputation runs it for every sample and step.
        adapt_steps: test-time adaptation (`hf_jepa.planning.adaptation.OnlineAdaptation`): after each executed
            planned action, this many gradient steps of the predictor on the episode's observed transitions
            (0: the model stays frozen). Assumes one planned action is executed per plan. The planner then adapts
            its own copy of the model (the one passed in is never changed); `reset()` restores the trained
            weights.
        adapt_lr: learning rate of those steps.
        subgoals: a graph of dataset frames (`hf_jepa.planning.subgoals.LatentSubgoalGraph`, built with this model's
            encoder): each plan aims at the frame a few steps along the data's shortest path to the goal instead of
            the goal itself (None: the goal).
        device: where the model runs.
        state_encoder: perfect perception (a ``--latents state`` world model,
            `hf_jepa.data.state_latents`): ``state (S,) -> (1, 1, D)`` latents used instead of encoding the
            images; `plan_fn` then plans toward ``info["goal_state"]``'s latents (None: encode the images).
    """

    model: JepaWorldModel
    config: CEMConfig | MPPIConfig
    energy: Literal["l1", "mse"] = "l1"
    reduction: Literal["last", "ramp", "mean"] = "last"
    use_cache: bool = True
    warm_start: bool = True
    context_frames: int = 1
    adapt_steps: int = 0
    adapt_lr: float = ADAPT_LR
    subgoals: LatentSubgoalGraph | None = None
    device: str | torch.device = "cpu"
    state_encoder: Callable[[Any], Tensor] | None = None
    _adaptation: OnlineAdaptation | None = field(default=None, init=False, repr=False)
    _previous: Tensor | None = field(default=None, init=False, repr=False)
    # observed (latents (1, N, D), state (S,), planned action executed into this frame or None), oldest first
    _history: list[tuple[Tensor, Tensor, Tensor | None]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.energy not in ("l1", "mse"):
            raise ValueError(f"energy={self.energy!r}: expected 'l1' or 'mse'")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction={self.reduction!r}: expected one of {REDUCTIONS}")
        if not isinstance(self.context_frames, int) or self.context_frames < 1:
            raise ValueError(f"context_frames={self.context_frames!r}: expected an int >= 1")
        if not isinstance(self.adapt_steps, int) or self.adapt_steps < 0:
            raise ValueError(f"adapt_steps={self.adapt_steps!r}: expected an int >= 0")
        if self.adapt_steps:  # adapt a private copy: the caller's model (shared by a Space, say) stays as trained;
            # the frozen encoder is shared, not copied (memo maps it to itself)
            self.model = copy.deepcopy(self.model, memo={id(self.model.encoder): self.model.encoder})
        self.model = self.model.to(self.device).eval()
        if self.adapt_steps:
            self._adaptation = OnlineAdaptation(self.model, steps=self.adapt_steps, lr=self.adapt_lr)

    @torch.no_grad()
    def encode(self, frames: np.ndarray | Tensor) -> Tensor:
        """uint8 frame(s) -> (1, T*N, D) latents."""
        return self.model.encode(frames_to_tensor(frames, self.model).to(self.device))

    def reset(self) -> None:
        """Forget the warm-start plan and the observed history, restore adapted weights (start of an episode)."""
        self._previous = None
        self._history.clear()
        if self._adaptation is not None:
            self._adaptation.reset()

    def energy_fn(self, context: Tensor, states: Tensor, goal: Tensor, history_actions: Tensor | None = None) -> Any:
        """Energy of (S, H, A) candidate sequences toward goal latents (1, N, D).

        Args:
            context: (1, T0*N, D) latents of the observed frames, oldest first (T0 = 1: the current frame).
            states: (T0, S_dim) the states fed with them ((S_dim,) for T0 = 1).
            history_actions: (T0-1, A) the actions executed between the observed frames (None when T0 = 1).
        """
        n = goal.shape[1]
        states = states.reshape(-1, self.model.config.state_dim)  # (T0, S_dim)
        t0 = states.shape[0]
        past = history_actions if history_actions is not None else context.new_zeros(0, self.model.config.action_dim)
        if past.shape[0] != t0 - 1:
            raise ValueError(f"history_actions: expected {t0 - 1} actions for {t0} context frames, got {past.shape[0]}")

        @torch.no_grad()
        def fn(actions: Tensor) -> Tensor:
            s = actions.shape[0]
            full = torch.cat([past[None].expand(s, -1, -1), actions.to(self.device)], dim=1)  # (S, T0-1+H, A)
            preds = self.model.rollout(context.expand(s, -1, -1), full, states[None].expand(s, -1, -1),
                                       use_cache=self.use_cache, shared_prefix=t0 - 1)  # (S, H*N, D)
            per_frame = preds.reshape(s * actions.shape[1], n, -1)  # (S, H*N, D) -> (S*H, N, D)
            energies = latent_energy(per_frame, goal[0], kind=self.energy).view(s, -1)  # (S, H)
            weights = frame_weights(self.reduction, energies.shape[1], energies.device)  # (H,)
            return (energies @ weights / weights.sum()).cpu()  # (S,)

        return fn

    @torch.no_grad()
    def plan(self, observation: np.ndarray | Tensor, goal: np.ndarray | Tensor,
             state: np.ndarray | Tensor, *, generator: torch.Generator | None = None,
             goal_latents: Tensor | None = None) -> PlanResult:
        """Plan H actions from an observation image and its state toward a goal image (or its latents)."""
        goal_z = goal_latents if goal_latents is not None else self.encode(goal)
        state_t = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=self.device).reshape(-1)
        if state_t.numel() != self.model.config.state_dim:
            raise ValueError(f"state has {state_t.numel()} values but the world model takes "
                             f"state_dim={self.model.config.state_dim} (its training data's observation.state width)")
        latents = (self.state_encoder(state_t.cpu().numpy()).to(self.device) if self.state_encoder is not None
                   else self.encode(observation))  # (1, N, D)
        # (A,) the planned action MPC executed since the last plan (None at the episode start)
        executed = self._previous[0].to(self.device) if self._previous is not None else None
        if self._adaptation is not None:  # learn from the transition it made
            self._adaptation.observe(latents, state_t, executed)
        context, states, past = self._observe(latents, state_t, executed)
        if self.subgoals is not None:  # a waypoint along the data's shortest path (the goal once it is near)
            goal_z = self.subgoals.subgoal(latents, goal_z)
        generator = generator or self.config.make_generator()
        init = shift_plan(self._previous) if (self.warm_start and self._previous is not None) else None
        search = cem if isinstance(self.config, CEMConfig) else mppi
        result = search(self.energy_fn(context, states, goal_z, past), self.config,
                        action_dim=self.model.config.action_dim, generator=generator, init_mean=init)
        self._previous = result.actions
        return result

    def _observe(self, latents: Tensor, state: Tensor, executed: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Add the current frame (1, N, D), its state and the (A,) action executed into it to the history; return
        the rollout context.

        Returns:
            (1, T0*N, D) latents, (T0, S) states (the oldest frame's state held when the model's
            `state_update` is 'hold', as in training), and the (T0-1, A) actions between the frames or None.
        """
        if self.context_frames == 1:
            return latents, state[None], None
        self._history.append((latents, state, executed if self._history else None))
        del self._history[: -self.context_frames]
        context = torch.cat([z for z, _, _ in self._history], dim=1)  # (1, T0*N, D)
        states = torch.stack([s for _, s, _ in self._history])  # (T0, S)
        if self.model.config.state_update == "hold":
            states = states[:1].expand(len(self._history), -1)
        between = [a for _, _, a in self._history[1:]]  # T0-1 actions between consecutive frames
        return context, states, torch.stack(between) if between else None

    def plan_fn(self, *, seed: int = 0, action_repeat: int = 1) -> PlanFn:
        """A `run_mpc` plan function: (observation, goal_observation, info) -> PlanResult, using info['state'].

        Args:
            seed: seeds the planner's generator once for the whole episode.
            action_repeat: env steps per planned action (the model's `frame_skip` k). With the model's
                `action_reduce` "sum" a planned action is the sum of k env actions (what the model was trained on),
                so each becomes k env actions of action / k; with "concat" it holds the k env actions side by
                side, executed in turn: the returned plan has (H * k, A / k) actions.
        """
        if action_repeat < 1:
            raise ValueError(f"action_repeat={action_repeat}: expected >= 1")
        generator = torch.Generator().manual_seed(seed)
        cache: dict[str, Tensor] = {}

        def fn(observation: Any, goal: Any, info: Mapping[str, Any]) -> PlanResult:
            if self.state_encoder is not None:  # perfect perception: the goal state's latents
                goal = np.asarray(info["goal_state"], dtype=np.float32)
            key = hashlib.sha1(np.ascontiguousarray(goal).tobytes()).hexdigest()
            if key not in cache:  # the goal image is fixed for an episode: encode it once
                cache.clear()
                cache[key] = (self.state_encoder(goal).to(self.device) if self.state_encoder is not None
                              else self.encode(goal))
            result = self.plan(observation, goal, info["state"], generator=generator, goal_latents=cache[key])
            if action_repeat == 1:
                return result
            if self.model.config.action_reduce == "concat":
                if action_repeat != self.model.config.frame_skip:
                    raise ValueError(f"action_repeat={action_repeat}: a model with action_reduce='concat' executes "
                                     f"its frame_skip={self.model.config.frame_skip} env actions per planned action")
                env_actions = result.actions.reshape(-1, self.model.config.env_action_dim)  # (H*k, A/k)
            else:
                env_actions = (result.actions / action_repeat).repeat_interleave(action_repeat, dim=0)  # (H*k, A)
            return dataclasses.replace(result, actions=env_actions)

        return fn
