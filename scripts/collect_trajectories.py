"""Collect exploration trajectories from an env and write them in the LeRobot v3 layout.

    python scripts/collect_trajectories.py --env two_rooms --episodes 200 --steps_per_episode 100 \
        --output_dir outputs/two_rooms --seed 0 --image_size 64
    python scripts/collect_trajectories.py --env pusht --episodes 200 --steps_per_episode 100 \
        --output_dir outputs/pusht --seed 0

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
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    policy_kwargs = ({"door_prob": args.door_prob, "goal_prob": args.goal_prob, "wall_prob": args.wall_prob,
                      "door_edge_prob": args.door_edge_prob} if args.env == "two_rooms" else {})
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


if __name__ == "__main__":
    main()
