"""The planning evaluation job: load a world model, build the planner, run MPC episodes, write the outputs.

``scripts/evaluate_planning.py`` parses ``PlanningArguments`` and calls ``run_planning``. With ``dataset`` (LeWM's
protocol, :mod:`hf_jepa.planning.dataset_goals`) each episode starts at the state of a random frame t of a
held-out dataset and aims at the image of its state at t + ``goal_offset``, within ``max_steps`` env steps (default
2 x goal_offset, LeWM's budget); otherwise the env samples start and goal. Outputs (``write_evaluation``): the JSON
(success_rate, episodes, mean_final_distance, seconds_per_action, seconds_per_plan, the planner settings, the means
of the last step's scalars, per-episode records, Two-Rooms' per-room rates), evaluate's ``result-*.json``, a GIF
and an energy plot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from hf_jepa.data.state_latents import load_state_latents
from hf_jepa.envs import check_env_name, make_goal_env
from hf_jepa.envs.pusht_data import INFO_KEY, check_action_space
from hf_jepa.planning.adaptation import ADAPT_LR, ADAPT_STEPS
from hf_jepa.planning.configs import WORLD_MODEL_PLANNER_DEFAULTS
from hf_jepa.planning.dataset_goals import GOAL_OFFSET, default_budget, sample_dataset_goals
from hf_jepa.planning.evaluation import evaluate_planning, planner_config, write_evaluation
from hf_jepa.planning.subgoals import SubgoalConfig, subgoal_graph_from

__all__ = ["PlanningArguments", "run_planning"]

logger = logging.getLogger(__name__)

_CEM = WORLD_MODEL_PLANNER_DEFAULTS["cem"]
_CEM_ONLY = ("topk", "noise_beta", "keep_elites", "return_best", "init_std_scale")


def _help(text: str) -> dict[str, Any]:
    return {"help": text}


@dataclass
class PlanningArguments:
    """The planning evaluation's settings (``scripts/evaluate_planning.py``'s flags). Planner sizes left None take
    ``WORLD_MODEL_PLANNER_DEFAULTS`` (the values in their help) with the env's ``ENV_PLANNER_RECIPES`` entry applied
    (``--env pusht``: H 5, 128 samples x 16 iterations, elite 6, init_std_scale 0.25)."""

    model: str = field(metadata=_help("world-model folder or Hub id (JepaWorldModel)"))
    env: str = field(default="two_rooms",
                     metadata=_help("'two_rooms', 'pusht' or a registered gymnasium id with rgb_array rendering"))
    episodes: int = 50
    seed: int = 0
    max_steps: int | None = field(default=None, metadata=_help(
        "env steps per episode (default 100; with --dataset 2 x --goal_offset, LeWM's eval budget)"))
    dataset: str | None = field(default=None, metadata=_help(
        "held-out LeRobot data of the env (folder or Hub id): start and goal states from its trajectories (LeWM's "
        "protocol); default: the env's own start and goal sampling"))
    goal_offset: int = field(default=GOAL_OFFSET, metadata=_help(
        "with --dataset: frames between the start and the goal state (LeWM: 25)"))
    other_room_prob: float | None = field(default=None, metadata=_help(
        "two_rooms: probability that a goal lies in the other room (env default: 1.0)"))
    success: Literal["coverage", "pose"] | None = field(default=None, metadata=_help(
        "pusht: success when the block covers > 95%% of the goal T (gym-pusht, the default) or when the agent + "
        "block position error is < 20 px and the angle error < pi/9 (LeWM)"))
    planner: Literal["cem", "mppi"] = "cem"
    num_samples: int | None = field(default=None, metadata=_help(f"candidates per iteration ({_CEM['num_samples']})"))
    horizon: int | None = field(default=None, metadata=_help(
        f"planned model steps, each spanning frame_skip env steps ({_CEM['horizon']})"))
    iterations: int | None = field(default=None, metadata=_help(f"planner iterations ({_CEM['iterations']})"))
    topk: int | None = field(default=None, metadata=_help(f"CEM elite size ({_CEM['topk']}, at most num_samples)"))
    noise_beta: float | None = field(default=None, metadata=_help(
        f"CEM: 1/f^beta colored sampling noise over the horizon (iCEM; 0 = white) ({_CEM['noise_beta']:g})"))
    keep_elites: int | None = field(default=None, metadata=_help(
        f"CEM: elites carried into the next iteration (iCEM's elite memory) ({_CEM['keep_elites']})"))
    return_best: bool | None = field(default=None, metadata=_help(
        f"CEM: execute the best sequence found, not the final mean ({str(_CEM['return_best']).lower()})"))
    init_std_scale: float | None = field(default=None, metadata=_help(
        "CEM: first sampling std as a fraction of the planned action's bound (1; Push-T's recipe: 0.25)"))
    energy: Literal["l1", "mse"] = "l1"
    reduction: Literal["last", "ramp", "mean"] = field(default="ramp", metadata=_help(
        "score the last predicted frame (Meta), a 0.1->1 ramp over the predicted frames (PLDM) or their mean "
        "(EB-JEPA)"))
    replan_every: int = field(default=1, metadata=_help("planned actions executed per replan"))
    context_frames: int = field(default=1, metadata=_help(
        "observed frames (current + earlier, one planned action apart) each rollout starts from"))
    adapt_steps: int = field(default=ADAPT_STEPS, metadata=_help(
        "test-time adaptation: predictor gradient steps on the episode's observed transitions after each executed "
        "action (0 = the frozen model, as Meta plans)"))
    adapt_lr: float = field(default=ADAPT_LR, metadata=_help("learning rate of the adaptation steps"))
    subgoals: str | None = field(default=None, metadata={"aliases": ["--subgoal_dataset"], **_help(
        "plan toward waypoints along the training data's shortest path to the goal (hf_jepa.planning.subgoals): the "
        "world model's LeRobot data (folder or Hub id; its frames get encoded) or the subgoal_graph.safetensors that "
        "train_world_model.py --save_subgoal_graph wrote beside the model; default: the goal itself")})
    subgoal_stride: int | None = field(default=None, metadata=_help(
        f"dataset frames between graph nodes (default {SubgoalConfig.stride}; a saved graph's own)"))
    subgoal_lookahead: int | None = field(default=None, metadata=_help(
        f"graph steps from the current frame to its waypoint (default {SubgoalConfig.lookahead}; a saved graph's "
        "own)"))
    device: str | None = field(default=None, metadata=_help("cpu or cuda (default: cuda when available)"))
    json: str | None = field(default=None, metadata=_help("write the metrics here (default output_dir/planning.json)"))
    output_dir: str | None = field(default=None, metadata=_help("GIF and plot go here (default: beside --json)"))

    def __post_init__(self) -> None:
        check_env_name(self.env)
        for name in ("episodes", "goal_offset", "replan_every", "context_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected >= 1")


def run_planning(args: PlanningArguments) -> dict[str, Any]:
    """Evaluate ``args.model`` on ``args.episodes`` MPC episodes; write the outputs; return the JSON's content."""
    from transformers import AutoModel

    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

    model = AutoModel.from_pretrained(args.model)
    if not isinstance(model, JepaWorldModel):
        raise ValueError(f"model={args.model!r} loads a {type(model).__name__}; expected a JepaWorldModel")
    names = ("horizon", "num_samples", "iterations") + (_CEM_ONLY if args.planner == "cem" else ())
    sizes = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    config = planner_config(model, args.planner, env=args.env, **sizes)
    subgoals = None
    if args.subgoals:
        subgoals = subgoal_graph_from(args.subgoals, model, stride=args.subgoal_stride,
                                      lookahead=args.subgoal_lookahead)
    env_kwargs: dict[str, Any] = {} if args.other_room_prob is None else {"other_room_goal_prob": args.other_room_prob}
    if args.success is not None:
        env_kwargs["success_criterion"] = args.success
    state_encoder = None
    loaded = load_state_latents(args.model) if Path(args.model).is_dir() else None
    if loaded is not None:  # a --latents state world model: perfect perception, one action unit for all
        latents, record = loaded
        state_encoder = latents.tensor
        env_scale = getattr(getattr(make_goal_env(args.env).unwrapped, "config", None), "action_scale", None)
        if record.get("action") and env_scale is not None:
            check_action_space({INFO_KEY: {"action": record["action"]}}, unit_px=float(env_scale),
                               where=f"world model {args.model!r} planned in env {args.env!r}")
    tasks, max_steps = None, args.max_steps or 100
    if args.dataset:
        checker = make_goal_env(args.env, **env_kwargs).unwrapped  # skips tasks the env cannot reset to
        tasks = sample_dataset_goals(args.dataset, goal_offset=args.goal_offset, episodes=args.episodes,
                                     seed=args.seed, check_state=getattr(checker, "check_state", None),
                                     state_dim=model.config.state_dim)
        max_steps = args.max_steps or default_budget(args.goal_offset)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    evaluation = evaluate_planning(model, env=args.env, episodes=args.episodes, seed=args.seed, config=config,
                                   energy=args.energy, reduction=args.reduction, max_steps=max_steps,
                                   replan_every=args.replan_every, context_frames=args.context_frames,
                                   adapt_steps=args.adapt_steps, adapt_lr=args.adapt_lr, subgoals=subgoals,
                                   env_kwargs=env_kwargs, tasks=tasks, device=device, state_encoder=state_encoder)
    json_path = Path(args.json) if args.json else Path(args.output_dir or ".") / "planning.json"
    info = {"model": args.model} if tasks is None else {"model": args.model, "dataset": args.dataset}
    return write_evaluation(evaluation, json_path, args.output_dir, **info)
