"""Collect exploration trajectories from an env and write them in the LeRobot v3 layout.

    python scripts/collect_trajectories.py --env two_rooms --episodes 200 --steps_per_episode 100 \
        --output_dir outputs/two_rooms --seed 0 --image_size 64

Each episode: reset(seed=seed + episode), then ``steps_per_episode`` steps of the exploration policy
(Two-Rooms: random waypoints through the door, see ``hf_jepa.envs.exploration``; any other gymnasium id:
correlated random actions, goal images from a random rollout). An episode stores T = steps + 1 frames
(fewer if the env ends early) and T actions: ``action[t]`` moves frame t to t + 1, the last one is the
policy's action at the last frame (not executed). Episodes do not end on success.
"""

import argparse
import logging
import time

import numpy as np
from tqdm import tqdm

from hf_jepa.data.lerobot import LeRobotWriter
from hf_jepa.envs import TwoRoomsEnv, make_exploration_policy, make_goal_env

CAMERA_KEY = "observation.image"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="two_rooms", help="'two_rooms' or any gymnasium id with rgb_array rendering")
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
    if args.episodes < 1 or args.steps_per_episode < 1:
        raise SystemExit(f"--episodes={args.episodes} and --steps_per_episode={args.steps_per_episode} must be >= 1")

    env_kwargs = {"max_episode_steps": args.steps_per_episode} if args.env == "two_rooms" else {}
    env = make_goal_env(args.env, image_size=args.image_size, terminate_on_success=False, **env_kwargs)
    two_rooms = isinstance(env.unwrapped, TwoRoomsEnv)
    rng = np.random.default_rng(args.seed)
    policy_kwargs = ({"door_prob": args.door_prob, "goal_prob": args.goal_prob, "wall_prob": args.wall_prob,
                      "door_edge_prob": args.door_edge_prob}
                     if two_rooms else {})
    policy = make_exploration_policy(env, rng, **policy_kwargs)

    writer = LeRobotWriter(
        args.output_dir,
        fps=args.fps,
        state_names=["x", "y"] if two_rooms else None,
        action_names=["dx", "dy"] if two_rooms else None,
        robot_type="point_agent" if two_rooms else args.env,
        episodes_per_file=args.episodes_per_file,
        overwrite=args.overwrite,
    )
    task = args.task or f"explore {args.env}"
    crossings, both_rooms, n_frames = [], 0, 0
    start = time.perf_counter()
    for ep in tqdm(range(args.episodes), desc="episodes", unit="ep"):
        obs, info = env.reset(seed=args.seed + ep)
        policy.reset(info)
        frames, states, actions = [obs], [info["state"]], []
        for _ in range(args.steps_per_episode):
            action = policy(obs, info)
            obs, _, terminated, truncated, info = env.step(action)
            actions.append(action)
            frames.append(obs)
            states.append(info["state"])
            if terminated or truncated:
                break
        actions.append(policy(obs, info))  # chosen at the last frame, not executed
        states_arr = np.stack(states)
        writer.add_episode({CAMERA_KEY: np.stack(frames)}, states_arr, np.stack(actions), task=task)
        n_frames += len(frames)
        if two_rooms:
            rooms = [env.unwrapped.room_of(s) for s in states_arr]
            crossings.append(int(np.count_nonzero(np.diff(rooms))))
            both_rooms += len(set(rooms)) == 2
    root = writer.finalize()
    wall = time.perf_counter() - start

    print(f"wrote {root}: {args.episodes} episodes, {n_frames} frames ({CAMERA_KEY} {args.image_size}px)")
    print(f"wall time {wall:.1f}s ({n_frames / wall:.0f} frames/s)")
    if two_rooms:
        both = both_rooms / args.episodes
        print(f"door crossings/episode {np.mean(crossings):.2f}; episodes visiting both rooms {both:.0%}")


if __name__ == "__main__":
    main()
