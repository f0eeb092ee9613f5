"""Push-T with perfect perception: a world model whose latents are the true state, planned with the library's planner.

Separates perception from dynamics and search. `--dynamics simulator` replaces the learned model by gym-pusht's
own physics (`PushTGoalEnv.snapshot` / `restore` / `advance`, velocities included): the ceiling of the search.
Each frame's latent is computed from its state (the agent's position
and the T's 8 corners, arena units, centred and scaled), not from pixels, so no encoder can lose the block's pose.
The AC predictor (`JepaWorldModel`'s, one token per frame) is trained on those latents of a LeRobot Push-T dataset
(teacher forcing + rollout, MSE), then `WorldModelPlanner` plans with CEM toward the latent of the goal state under
LeWM's protocol (`sample_dataset_goals`: start and goal from held-out episodes, the goal `--goal_offset` steps
ahead, a budget of twice that), success by the pose criterion. The planner sees observation and goal images; a
wrapper around the env maps each image it renders back to the state it rendered.

    python scripts/collect_trajectories.py --env pusht --episodes 200 --output_dir runs/pusht --seed 0
    python scripts/collect_trajectories.py --env pusht --episodes 40 --output_dir runs/pusht_heldout --seed 100000
    OMP_NUM_THREADS=2 python docs/experiments/pusht_state_oracle.py --dataset runs/pusht --heldout runs/pusht_heldout
    OMP_NUM_THREADS=2 python docs/experiments/pusht_state_oracle.py --dynamics simulator

About 1 min of training and 15 s of planning (20 goals) on 2 CPU cores; the simulator plans in about 2.5 min.
The planner takes Push-T's recipe (`ENV_PLANNER_RECIPES["pusht"]`) unless a flag overrides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

from hf_jepa.envs import make_goal_env
from hf_jepa.planning.dataset_goals import default_budget, sample_dataset_goals
from hf_jepa.planning.evaluation import planner_config
from hf_jepa.planning.mpc import PlanFn, run_mpc
from hf_jepa.planning.search import cem, shift_plan
from hf_jepa.planning.world_model_planner import WorldModelPlanner

WIDTH = 24  # latent width: 2 agent + 16 corner coordinates, zero-padded to a multiple of the attention heads


def state_latent(env: Any, state: np.ndarray) -> np.ndarray:
    """(5,) Push-T state -> (WIDTH,) latent: agent (x, y) and the T's corners, centred on the table and scaled."""
    s = np.asarray(state, dtype=np.float64)
    corners = env.unwrapped.corners(np.array([s[2] * 512.0, s[3] * 512.0, s[4]])) / 512.0  # (8, 2) arena units
    out = np.zeros(WIDTH, dtype=np.float32)
    out[:18] = (np.concatenate([s[:2], corners.reshape(-1)]) - 0.5) * 4.0
    return out


def load_episodes(path: str, env: Any) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Per episode: latents (L, WIDTH), states (L, 5) and actions (L, 2) of a local LeRobot Push-T folder (its
    data parquet files only: no video is decoded)."""
    table = pq.read_table(sorted(Path(path).glob("data/chunk-*/*.parquet")),
                          columns=["episode_index", "frame_index", "observation.state", "action"]).to_pandas()
    latents, states, actions = [], [], []
    for _, rows in table.sort_values(["episode_index", "frame_index"]).groupby("episode_index"):
        st = np.stack(rows["observation.state"].to_numpy())  # (L, 5)
        latents.append(torch.tensor(np.stack([state_latent(env, s) for s in st])))
        states.append(torch.tensor(st, dtype=torch.float32))
        actions.append(torch.tensor(np.stack(rows["action"].to_numpy()), dtype=torch.float32))
    return latents, states, actions


def train(args: argparse.Namespace, env: Any) -> JepaWorldModel:
    """The AC predictor trained on state latents (teacher forcing + full rollout, MSE, cosine schedule)."""
    latents, states, actions = load_episodes(args.dataset, env)
    encoder = VideoJepaConfig.from_preset("tiny", patch_size=64, hidden_size=WIDTH, num_hidden_layers=1,
                                          intermediate_size=2 * WIDTH, num_attention_heads=1)  # a (1, 1) frame grid
    config = JepaWorldModelConfig.from_preset("tiny", encoder_config=encoder, action_dim=2, state_dim=5,
                                              frame_skip=args.frame_skip, max_steps=8, state_update="hold",
                                              normalize_latents=False, predict_residual=args.predict_residual)
    model = JepaWorldModel(config)
    optimizer = torch.optim.AdamW(model.predictor.parameters(), lr=args.lr, weight_decay=1e-4)
    t, k = args.frames_per_window, args.frame_skip
    generator = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 50) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        eps = torch.randint(len(latents), (args.batch_size,), generator=generator).tolist()
        z, s, a = [], [], []
        for e in eps:
            start = int(torch.randint(latents[e].shape[0] - t * k + 1, (1,), generator=generator))
            rows = torch.arange(t) * k + start  # (T,)
            z.append(latents[e][rows])
            s.append(states[e][rows][:1].expand(t, -1))  # the first state held, as in planning
            a.append(actions[e][start:start + t * k].view(t, k, -1).sum(1))  # (T, 2): net action per model step
        z, s, a = torch.stack(z), torch.stack(s), torch.stack(a)  # (B, T, WIDTH), (B, T, 5), (B, T, 2)
        out = model(a, s, latents=z, auto_steps=t - 1)
        loss = (out.teacher_forced - out.targets).pow(2).mean() + (out.rollout - out.targets).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 500 == 0 or step == args.steps:
            copy = (out.targets - z[:, :1]).pow(2).mean().item()  # predicting "nothing moves" from frame 0
            teacher = (out.teacher_forced - out.targets).pow(2).mean().item()
            print(f"step {step}: loss {loss.item():.4f} (teacher forcing {teacher:.4f}; frame 0 copied: {copy:.4f})",
                  flush=True)
    return model.eval()


class StateLookup:
    """Wraps the env: remembers the state of every image it returns (observations and the goal image)."""

    def __init__(self, env: Any) -> None:
        self.env, self.states = env, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    @staticmethod
    def key(image: Any) -> str:
        return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.states[self.key(obs)] = info["state"]
        self.states[self.key(info["goal"])] = info["goal_state"]
        return obs, info

    def step(self, action: Any) -> tuple:
        out = self.env.step(action)
        self.states[self.key(out[0])] = out[4]["state"]
        return out


def simulator_planner(env: StateLookup, config: Any, frame_skip: int) -> Any:
    """`plan_fn(seed, action_repeat)` factory like `WorldModelPlanner.plan_fn`, scoring candidates with a second
    Push-T env restored to the real one's snapshot: the same energy (MSE to the goal's state latent, PLDM's ramp
    over the H planned actions), each planned action run as `frame_skip` env steps of action / frame_skip."""
    sim = make_goal_env("pusht").unwrapped
    sim.reset(seed=0)
    weights = np.linspace(0.1, 1.0, config.horizon)  # (H,) the 'ramp' reduction

    def factory(*, seed: int, action_repeat: int) -> PlanFn:
        generator, previous = torch.Generator().manual_seed(seed), {"plan": None}

        def fn(observation: Any, goal: Any, info: Any) -> Any:
            snap, goal_latent = env.unwrapped.snapshot(), state_latent(env, info["goal_state"])

            def energy(actions: torch.Tensor) -> torch.Tensor:  # (S, H, 2) -> (S,)
                out = []
                for plan in actions.numpy():
                    sim.restore(snap)
                    per_step = []
                    for action in plan:
                        for _ in range(frame_skip):
                            state = sim.advance(action / frame_skip)
                        per_step.append(((state_latent(env, state) - goal_latent) ** 2).mean())
                    out.append(float(np.dot(per_step, weights) / weights.sum()))
                return torch.tensor(out)

            init = shift_plan(previous["plan"]) if previous["plan"] is not None else None
            result = cem(energy, config, action_dim=2, generator=generator, init_mean=init)
            previous["plan"] = result.actions
            return dataclasses.replace(result, actions=(result.actions / action_repeat).repeat_interleave(
                action_repeat, dim=0))  # (H * k, 2) env actions

        return fn

    return factory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="runs/pusht")
    parser.add_argument("--heldout", default="runs/pusht_heldout")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--frames_per_window", type=int, default=6)
    parser.add_argument("--frame_skip", type=int, default=5)
    parser.add_argument("--goal_offset", type=int, default=25)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--dynamics", choices=("learned", "simulator"), default="learned")
    parser.add_argument("--predict_residual", action="store_true", help="the predictor outputs each token's change")
    parser.add_argument("--context_frames", type=int, default=1, help="observed frames each rollout starts from")
    parser.add_argument("--num_samples", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--horizon", type=int, default=None)
    parser.add_argument("--init_std_scale", type=float, default=None, help="CEM's first std / the action bound")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    env = StateLookup(make_goal_env("pusht", success_criterion="pose"))
    names = ("num_samples", "iterations", "horizon", "init_std_scale")
    sizes = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.dynamics == "learned":
        model = train(args, env)
        config = planner_config(model, "cem", env="pusht", **sizes)
        planner = WorldModelPlanner(model, config, energy="mse", reduction="ramp", context_frames=args.context_frames)
        planner.encode = lambda frames: torch.tensor(state_latent(env, env.states[env.key(frames)]))[None, None]

        def plan_fn(*, seed: int, action_repeat: int) -> PlanFn:
            planner.reset()  # a new episode: no warm start, no history
            return planner.plan_fn(seed=seed, action_repeat=action_repeat)
    else:
        skip = SimpleNamespace(config=SimpleNamespace(frame_skip=args.frame_skip))  # planner_config reads frame_skip
        config = planner_config(skip, "cem", env="pusht", **sizes)
        plan_fn = simulator_planner(env, config, args.frame_skip)
    tasks = sample_dataset_goals(args.heldout, goal_offset=args.goal_offset, episodes=args.episodes, seed=args.seed,
                                 check_state=env.unwrapped.check_state, state_dim=5)  # refused states: skipped
    records = []
    for i, task in enumerate(tasks):
        episode = run_mpc(env, plan_fn(seed=i, action_repeat=args.frame_skip),
                          max_steps=default_budget(args.goal_offset), execute_actions=args.frame_skip,
                          options=task.options())
        records.append({"success": episode.success, "start_distance": episode.start_info["distance"],
                        "final_distance": episode.final_info["distance"]})
        print(i, records[-1], flush=True)
    summary = {"success_rate": float(np.mean([r["success"] for r in records])),
               "mean_start_distance": float(np.mean([r["start_distance"] for r in records])),
               "mean_final_distance": float(np.mean([r["final_distance"] for r in records])),
               "goal_offset": args.goal_offset, "budget": default_budget(args.goal_offset), "episodes": len(records),
               "skipped_tasks": len(tasks.skipped), "skipped": tasks.skipped,
               "dynamics": args.dynamics, "predict_residual": args.predict_residual,
               "context_frames": args.context_frames,
               "predictor_steps": args.steps if args.dynamics == "learned" else None,
               "cem": [config.num_samples, config.iterations, config.horizon], "init_std": config.init_std}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
