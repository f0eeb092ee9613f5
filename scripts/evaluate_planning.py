"""Plan toward goal images with a trained world model: N MPC episodes, metrics as JSON, a GIF and an energy plot.

    python scripts/evaluate_planning.py --model runs/wm/final --env two_rooms --episodes 50 --seed 0 \
        --json out.json [--output_dir runs/wm/eval --planner cem --num_samples 300 --horizon 8 --iterations 10 \
        --reduction ramp --noise_beta 2]

    python scripts/evaluate_planning.py --model runs/pusht_wm/final --env pusht --dataset data/pusht_heldout \
        --goal_offset 25 --episodes 50 --json pusht.json

With --dataset (LeWM's protocol, `hf_jepa.planning.dataset_goals`): each episode starts at the state of a random
frame t of the dataset and aims at the image of its state at t + goal_offset, with a budget of --max_steps env steps
(default 2 x goal_offset, LeWM's). The JSON holds success_rate, episodes, mean_final_distance, seconds_per_action
(planning time per env step), seconds_per_plan, the planner settings, the means of the last step's scalars (`final`:
Push-T's coverage, position / angle errors, both success flags), per-episode records and, on Two-Rooms, the success
rates for goals in the same / other room.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from transformers import AutoModel

import hf_jepa  # noqa: F401  (registers the Auto classes)
from hf_jepa.envs import check_env_name
from hf_jepa.planning.adaptation import ADAPT_LR, ADAPT_STEPS
from hf_jepa.planning.configs import WORLD_MODEL_PLANNER_DEFAULTS
from hf_jepa.planning.dataset_goals import GOAL_OFFSET, default_budget, sample_dataset_goals
from hf_jepa.planning.evaluation import evaluate_planning, planner_config, write_evaluation
from hf_jepa.planning.subgoals import SubgoalConfig, subgoal_graph_from

CEM = WORLD_MODEL_PLANNER_DEFAULTS["cem"]


def _flag(value: str) -> bool:
    """'true' / 'false' (any case) -> bool."""
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value.lower() == "true"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="world-model folder or Hub id (JepaWorldModel)")
    p.add_argument("--env", default="two_rooms",
                   help="'two_rooms', 'pusht' or a registered gymnasium id with rgb_array rendering")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max_steps", type=int, default=None,
                   help="env steps per episode (default 100; with --dataset 2 x --goal_offset, LeWM's eval budget)")
    p.add_argument("--dataset", default=None,
                   help="held-out LeRobot data of the env (folder or Hub id): start and goal states from its "
                        "trajectories (LeWM's protocol); default: the env's own start and goal sampling")
    p.add_argument("--goal_offset", type=int, default=GOAL_OFFSET,
                   help="with --dataset: frames between the start and the goal state (LeWM: 25)")
    p.add_argument("--other_room_prob", type=float, default=None,
                   help="two_rooms: probability that a goal lies in the other room (env default: 1.0)")
    p.add_argument("--success", choices=["coverage", "pose"], default=None,
                   help="pusht: success when the block covers > 95%% of the goal T (gym-pusht, the default) or when "
                        "the agent + block position error is < 20 px and the angle error < pi/9 (LeWM)")
    p.add_argument("--planner", choices=["cem", "mppi"], default="cem")
    # planner sizes left unset take `hf_jepa.planning.evaluation.planner_config`'s defaults (the values in the help)
    p.add_argument("--num_samples", type=int, default=None, help=f"candidates per iteration ({CEM['num_samples']})")
    p.add_argument("--horizon", type=int, default=None,
                   help=f"planned model steps, each spanning frame_skip env steps ({CEM['horizon']})")
    p.add_argument("--iterations", type=int, default=None, help=f"planner iterations ({CEM['iterations']})")
    p.add_argument("--topk", type=int, default=None, help=f"CEM elite size ({CEM['topk']}, at most --num_samples)")
    p.add_argument("--noise_beta", type=float, default=None,
                   help="CEM: 1/f^beta colored sampling noise over the horizon (iCEM; 0 = white) "
                        f"({CEM['noise_beta']:g})")
    p.add_argument("--keep_elites", type=int, default=None,
                   help=f"CEM: elites carried into the next iteration (iCEM's elite memory) ({CEM['keep_elites']})")
    p.add_argument("--return_best", type=_flag, default=None, metavar="{true,false}",
                   help=f"CEM: execute the best sequence found, not the final mean ({str(CEM['return_best']).lower()})")
    p.add_argument("--energy", choices=["l1", "mse"], default="l1")
    p.add_argument("--reduction", choices=["last", "ramp", "mean"], default="ramp",
                   help="score the last predicted frame (Meta), a 0.1->1 ramp over the predicted frames (PLDM) or "
                        "their mean (EB-JEPA)")
    p.add_argument("--replan_every", type=int, default=1, help="planned actions executed per replan")
    p.add_argument("--context_frames", type=int, default=1,
                   help="observed frames (current + earlier, one planned action apart) each rollout starts from")
    p.add_argument("--adapt_steps", type=int, default=ADAPT_STEPS,
                   help="test-time adaptation: predictor gradient steps on the episode's observed transitions after "
                        "each executed action (0 = the frozen model, as Meta plans)")
    p.add_argument("--adapt_lr", type=float, default=ADAPT_LR, help="learning rate of the adaptation steps")
    p.add_argument("--subgoals", "--subgoal_dataset", dest="subgoals", default=None,
                   help="plan toward waypoints along the training data's shortest path to the goal "
                        "(hf_jepa.planning.subgoals): the world model's LeRobot data (folder or Hub id; its frames "
                        "get encoded) or the subgoal_graph.safetensors that train_world_model.py "
                        "--save_subgoal_graph wrote beside the model; default: the goal itself")
    p.add_argument("--subgoal_stride", type=int, default=None,
                   help=f"dataset frames between graph nodes (default {SubgoalConfig.stride}; a saved graph's own)")
    p.add_argument("--subgoal_lookahead", type=int, default=None,
                   help=f"graph steps (of --subgoal_stride frames) from the current frame to its waypoint (default "
                        f"{SubgoalConfig.lookahead}; a saved graph's own)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None, help="write the metrics here (default output_dir/planning.json)")
    p.add_argument("--output_dir", default=None, help="GIF and plot go here (default: beside --json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        check_env_name(args.env)
    except ValueError as err:
        raise SystemExit(f"--env: {err}") from err
    model = AutoModel.from_pretrained(args.model)
    if not isinstance(model, JepaWorldModel):
        raise SystemExit(f"--model {args.model!r} loads a {type(model).__name__}; expected a JepaWorldModel")
    cem_only = ("topk", "noise_beta", "keep_elites", "return_best")
    names = ("horizon", "num_samples", "iterations") + (cem_only if args.planner == "cem" else ())
    sizes = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    config = planner_config(model, args.planner, **sizes)
    subgoals = None
    if args.subgoals:
        subgoals = subgoal_graph_from(args.subgoals, model, stride=args.subgoal_stride,
                                      lookahead=args.subgoal_lookahead)
    env_kwargs = {} if args.other_room_prob is None else {"other_room_goal_prob": args.other_room_prob}
    if args.success is not None:
        env_kwargs["success_criterion"] = args.success
    tasks, max_steps = None, args.max_steps or 100
    if args.dataset:
        tasks = sample_dataset_goals(args.dataset, goal_offset=args.goal_offset, episodes=args.episodes,
                                     seed=args.seed)
        max_steps = args.max_steps or default_budget(args.goal_offset)
    evaluation = evaluate_planning(model, env=args.env, episodes=args.episodes, seed=args.seed, config=config,
                                   energy=args.energy, reduction=args.reduction, max_steps=max_steps,
                                   replan_every=args.replan_every,
                                   context_frames=args.context_frames, adapt_steps=args.adapt_steps,
                                   adapt_lr=args.adapt_lr, subgoals=subgoals, env_kwargs=env_kwargs, tasks=tasks,
                                   device=args.device)
    json_path = Path(args.json) if args.json else Path(args.output_dir or ".") / "planning.json"
    info = {"model": args.model} if tasks is None else {"model": args.model, "dataset": args.dataset}
    results = write_evaluation(evaluation, json_path, args.output_dir, **info)
    r = results
    rooms = (f"; other room {r['success_rate_other_room']}, same room {r['success_rate_same_room']}"
             if "success_rate_other_room" in r else "")
    coverage = f"; mean final coverage {r['final']['coverage']:.2f}" if "coverage" in r["final"] else ""
    print(f"success {r['success_rate']:.0%} ({r['successes']}/{r['episodes']}){rooms}{coverage}; mean final distance "
          f"{r['mean_final_distance']:.3f}; {r['seconds_per_action']:.3f} s/action, {r['seconds_per_plan']:.2f} "
          f"s/plan; wrote {json_path}, {results['gif']}, {results['energy_plot']}")
    return results


if __name__ == "__main__":
    main()
