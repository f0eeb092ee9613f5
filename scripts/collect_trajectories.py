"""Collect exploration trajectories from an env and write them in the LeRobot v3 layout.

    python scripts/collect_trajectories.py --env two_rooms --episodes 200 --steps_per_episode 100 \
        --output_dir outputs/two_rooms --seed 0 --image_size 64
    python scripts/collect_trajectories.py --env pusht --episodes 200 --steps_per_episode 100 \
        --output_dir outputs/pusht --seed 0

Push-T at scale (expert pushes replayed with noise, mixed with exploration; states and actions only, in worker
processes; ``hf_jepa.envs.pusht_data``), then frames rendered from the states where a pixel model needs them:

    python scripts/collect_trajectories.py --env pusht --policy expert_mix --no_render --workers 2 \
        --episodes 10000 --output_dir outputs/pusht_expert --seed 0
    python scripts/collect_trajectories.py --env pusht --render_from outputs/pusht_expert --episodes 1000 \
        --output_dir outputs/pusht_expert_64px --image_size 64 --workers 2

The episode loop and layout: ``hf_jepa.envs.collect.collect_trajectories``.
"""

import argparse
import logging

import numpy as np

from hf_jepa.envs.collect import CAMERA_KEY, collect_trajectories


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="two_rooms",
                   help="'two_rooms', 'pusht' or any gymnasium id with rgb_array rendering")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--steps_per_episode", type=int, default=100)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--fps", type=int, default=10, help="frame rate stored in the dataset (timestamps, video)")
    p.add_argument("--episodes_per_file", type=int, default=50)
    p.add_argument("--door_prob", type=float, default=0.5, help="two_rooms: probability a waypoint plan crosses")
    p.add_argument("--goal_prob", type=float, default=0.0, help="two_rooms: probability of goal-directed plans")
    p.add_argument("--wall_prob", type=float, default=0.25,
                   help="two_rooms: probability of a plan that pushes into the dividing wall (blocked moves)")
    p.add_argument("--door_edge_prob", type=float, default=0.5,
                   help="two_rooms: fraction of the wall pushes made beside the door, sliding away from it")
    p.add_argument("--task", default=None, help="task text stored with every episode")
    p.add_argument("--policy", choices=("explore", "expert_mix"), default="explore",
                   help="pusht: 'expert_mix' = scripted expert pushes replayed with noise, mixed with exploration")
    p.add_argument("--no_render", action="store_true",
                   help="pusht expert_mix: states and actions only (no video); render later with --render_from")
    p.add_argument("--workers", type=int, default=1, help="pusht expert_mix / --render_from: processes")
    p.add_argument("--explore_fraction", type=float, default=0.2, help="pusht expert_mix: share of exploration")
    p.add_argument("--noise_levels", default="0.1,0.25,0.5",
                   help="pusht expert_mix: comma-separated stds of the noise added to each replayed expert action")
    p.add_argument("--render_from", default=None,
                   help="pusht: render the frames of this state-only dataset (its first --episodes episodes)")
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    policy_kwargs = ({"door_prob": args.door_prob, "goal_prob": args.goal_prob, "wall_prob": args.wall_prob,
                      "door_edge_prob": args.door_edge_prob} if args.env == "two_rooms" else {})
    if args.render_from or args.policy == "expert_mix":
        return _pusht_at_scale(args)
    try:
        summary = collect_trajectories(args.env, args.output_dir, episodes=args.episodes,
                                       steps_per_episode=args.steps_per_episode, seed=args.seed,
                                       image_size=args.image_size, fps=args.fps,
                                       episodes_per_file=args.episodes_per_file, policy_kwargs=policy_kwargs,
                                       task=args.task, overwrite=args.overwrite)
    except ValueError as err:
        raise SystemExit(f"collect_trajectories: {err}") from err
    print(f"wrote {summary.root}: {summary.episodes} episodes, {summary.frames} frames "
          f"({CAMERA_KEY} {args.image_size}px)")
    print(f"wall time {summary.seconds:.1f}s ({summary.frames / summary.seconds:.0f} frames/s)")
    if summary.door_crossings:
        print(f"door crossings/episode {np.mean(summary.door_crossings):.2f}; "
              f"episodes visiting both rooms {summary.both_rooms / summary.episodes:.0%}")
    for name, values in summary.episode_stats.items():
        print(f"{name} per episode: mean {np.mean(values):.3g}, median {np.median(values):.3g}")


def _pusht_at_scale(args: argparse.Namespace) -> None:
    """--policy expert_mix (states only with --no_render) and --render_from: hf_jepa.envs.pusht_data."""
    from hf_jepa.envs.pusht_data import collect_pusht_states, render_trajectories

    if args.env != "pusht":
        raise SystemExit(f"collect_trajectories: expert_mix / --render_from need --env pusht, not {args.env!r}")
    try:
        if args.render_from:
            summary = render_trajectories(args.render_from, args.output_dir, image_size=args.image_size,
                                          workers=args.workers, episodes=range(args.episodes),
                                          episodes_per_file=args.episodes_per_file, overwrite=args.overwrite)
        else:
            if not args.no_render:
                raise ValueError("--policy expert_mix collects without rendering: pass --no_render, then render the "
                                 "frames with --render_from")
            levels = [float(v) for v in args.noise_levels.split(",") if v.strip()]
            summary = collect_pusht_states(args.output_dir, episodes=args.episodes,
                                           steps_per_episode=args.steps_per_episode, seed=args.seed,
                                           workers=args.workers, explore_fraction=args.explore_fraction,
                                           noise_levels=levels, fps=args.fps, overwrite=args.overwrite)
    except ValueError as err:
        raise SystemExit(f"collect_trajectories: {err}") from err
    rate = 60 * summary.episodes / summary.seconds
    print(f"wrote {summary.root}: {summary.episodes} episodes, {summary.frames} frames in {summary.seconds:.1f}s "
          f"({rate:.0f} episodes/min, {args.workers} workers)")
    for name, values in summary.episode_stats.items():
        print(f"{name} per episode: mean {np.mean(values):.3g}, median {np.median(values):.3g}")


if __name__ == "__main__":
    main()
