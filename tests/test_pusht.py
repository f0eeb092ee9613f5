"""Push-T as the second planning benchmark: the goal env (exact resets, goal images from states, coverage and pose
success, relative actions), the contact-seeking exploration policy, collection into LeRobot v3, LeWM's evaluation
protocol (start and goal from held-out trajectories) with a tiny random world model, and the bad-input errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import load_script, tiny_pusht_world_model

from hf_jepa.data.lerobot import LeRobotTrajectoryDataset, episode_states
from hf_jepa.envs import PUSHT_ID, PushTExplorer, PushTGoalEnv, make_exploration_policy, make_goal_env
from hf_jepa.envs.pusht import STATE_NAMES
from hf_jepa.planning import WorldModelPlanner, evaluate_planning, planner_config, sample_dataset_goals

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32  # image side of the toy runs




@pytest.fixture(scope="module")
def pusht_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 episodes x 16 steps of the Push-T explorer, through scripts/collect_trajectories.py."""
    root = tmp_path_factory.mktemp("pusht") / "data"
    load_script("collect_trajectories").main(["--env", "pusht", "--episodes", "3", "--steps_per_episode", "16",
                                          "--image_size", str(SIZE), "--output_dir", str(root), "--seed", "5"])
    return root


def test_env_reset_step_render_and_goal_image() -> None:
    env = make_goal_env("pusht", image_size=SIZE)
    assert isinstance(env, PushTGoalEnv) and env.observation_space.shape == (SIZE, SIZE, 3)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (SIZE, SIZE, 3) and info["goal"].shape == (SIZE, SIZE, 3)
    assert info["state"].dtype == np.float32 and info["state"].shape == (5,) and info["goal_state"].shape == (5,)
    for key in ("distance", "coverage", "position_error", "angle_error", "success", "success_coverage",
                "success_pose", "contact"):
        assert key in info
    np.testing.assert_allclose(info["goal_state"][2:], [0.5, 0.5, math.pi / 4], atol=1e-6)  # gym-pusht's target
    again, info_again = env.reset(seed=0)  # seeded: same start and goal
    np.testing.assert_array_equal(again, obs)
    np.testing.assert_array_equal(info_again["goal_state"], info["goal_state"])
    obs2, reward, terminated, truncated, info2 = env.step(np.array([1.0, 0.0], np.float32))
    assert obs2.shape == (SIZE, SIZE, 3) and reward == -info2["distance"] and not truncated
    assert info2["state"][0] > info["state"][0]  # moved right
    np.testing.assert_array_equal(env.render(), obs2)
    made = gym.make(PUSHT_ID, image_size=SIZE)  # registered id
    assert made.reset(seed=0)[0].shape == (SIZE, SIZE, 3)


def test_reset_to_a_state_renders_its_goal_image_and_succeeds_on_it() -> None:
    """A state equal to the goal: coverage 1, distance 0, success under both criteria; the goal image rendered from
    the goal state equals the observation of that state; render_state leaves the env where it was."""
    env = make_goal_env("pusht", image_size=SIZE, terminate_on_success=False)
    start = np.array([0.2, 0.8, 0.35, 0.4, 2.5], np.float32)
    goal = np.array([0.7, 0.25, 0.6, 0.55, -1.0], np.float32)
    obs, info = env.reset(seed=1, options={"start": start, "goal": goal})
    np.testing.assert_allclose(info["state"], start, atol=1e-6)  # exact (the angle set before the position)
    np.testing.assert_allclose(info["goal_state"], goal, atol=1e-6)
    assert not info["success"] and info["coverage"] < 0.5 and info["distance"] > 0.05
    np.testing.assert_array_equal(env.unwrapped.render_state(start), obs)
    np.testing.assert_allclose(env.unwrapped.state, start, atol=1e-6)  # render_state restored the env
    goal_obs, goal_info = env.reset(seed=1, options={"start": goal, "goal": goal})
    np.testing.assert_array_equal(goal_obs, info["goal"])
    assert goal_info["coverage"] == pytest.approx(1.0) and goal_info["distance"] == pytest.approx(0.0, abs=1e-6)
    assert goal_info["success"] and goal_info["success_coverage"] and goal_info["success_pose"]
    turned = goal.copy()
    turned[4] += 0.5  # the block turned by 0.5 rad: fails both criteria (pi/9 ~ 0.35 rad), distance grows
    _, turned_info = env.reset(seed=1, options={"start": turned, "goal": goal})
    assert not turned_info["success_pose"] and turned_info["coverage"] < 0.95 and turned_info["distance"] > 0.01
    assert turned_info["angle_error"] == pytest.approx(0.5, abs=1e-5)
    pose = make_goal_env("pusht", image_size=SIZE, success_criterion="pose")  # LeWM's criterion
    near = goal.copy()
    near[2] += 10 / 512  # 10 px off: within the pose tolerance (20 px), below 95% coverage
    _, near_info = pose.reset(seed=1, options={"start": near, "goal": goal})
    assert near_info["success"] and near_info["success_pose"] and not near_info["success_coverage"]


def test_relative_actions_stay_in_the_unit_ball_and_the_arena() -> None:
    env = make_goal_env("pusht", image_size=SIZE, terminate_on_success=False)
    start = np.array([0.5, 0.5, 0.2, 0.2, 0.0], np.float32)
    env.reset(seed=0, options={"start": start})
    big = env.step(np.array([0.0, 5.0]))[-1]["state"]  # projected onto the unit ball: as (0, 1)
    env.reset(seed=0, options={"start": start})
    unit = env.step(np.array([0.0, 1.0]))[-1]["state"]
    np.testing.assert_allclose(big, unit, atol=1e-6)
    assert unit[1] > start[1] and abs(unit[0] - start[0]) < 1e-6
    for _ in range(40):  # pushing into the bottom wall: the kinematic agent stays inside
        state = env.step(np.array([0.0, 1.0]))[-1]["state"]
    assert state[1] * 512 <= 504 - 15 + 1.0


def test_physics_is_gym_pushts_and_snapshots_replay_exactly() -> None:
    """`advance` (and so `step`) moves the bodies exactly as gym-pusht's own step with the same PD target; a
    snapshot restored into another instance replays the same actions to the same states (velocities included)."""
    from gym_pusht.envs.pusht import PushTEnv

    env = make_goal_env("pusht", image_size=SIZE).unwrapped
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (12, 2))
    for a in actions[:4]:
        env.step(a)
    snap = env.snapshot()
    reference = make_goal_env("pusht", image_size=SIZE).unwrapped
    reference.reset(seed=5)
    reference.restore(snap)
    assert reference.snapshot() == snap
    for a in actions[4:]:
        unit = a / max(1.0, float(np.linalg.norm(a)))
        target = np.clip(np.asarray(reference.sim.agent.position) + 100.0 * unit, 7.0 + 15.0, 504.0 - 15.0)
        PushTEnv.step(reference.sim, target)  # gym-pusht's physics
        state = env.step(a)[-1]["state"]
        assert np.array_equal(np.float32(reference._read_state()), state)
    env.restore(snap)
    replay = [env.advance(a) for a in actions[4:]]
    assert np.array_equal(np.float32(replay[-1]), state)
    with pytest.raises(ValueError, match="snapshot=.*10 finite floats"):
        env.restore((0.0,) * 9)


def test_bad_inputs_are_errors_naming_the_value() -> None:
    env = make_goal_env("pusht", image_size=SIZE)
    with pytest.raises(ValueError, match=r"block_x=1\.3.*\[0\.0137, 0\.9844\]"):
        env.reset(options={"goal": [0.5, 0.5, 1.3, 0.5, 0.0]})
    with pytest.raises(ValueError, match=r"options\['start'\]"):
        env.reset(options={"start": [0.5, 0.5, 0.5]})
    # a block pushed against the left wall (origin 0.3 px from the table's edge, from collected data) is a valid state
    pressed = [0.0594, 0.6177, 0.00054, 0.5486, -1.5359]
    assert np.allclose(env.reset(options={"start": pressed, "goal": pressed})[1]["state"], pressed, atol=1e-3)
    with pytest.raises(ValueError, match=r"block_y=-0\.3.*block's origin in \[-0\.2225, 1\.2206\]"):
        env.reset(options={"start": [0.5, 0.5, 0.5, -0.3, 0.0]})
    with pytest.raises(ValueError, match="unknown options"):
        env.reset(options={"target": [0.5] * 5})
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"unknown.*'pusht'.*'two_rooms'"):
        make_goal_env("push_t")
    with pytest.raises(ValueError, match="success_radius"):
        make_goal_env("pusht", success_radius=0.1)
    with pytest.raises(ValueError, match="success_criterion='iou'"):
        PushTGoalEnv(success_criterion="iou")
    with pytest.raises(ValueError, match="unknown config fields"):
        PushTGoalEnv(max_norm=1.0)
    with pytest.raises(ValueError, match="push_prob"):
        PushTExplorer(env, np.random.default_rng(0), push_prob=0.9, goal_prob=0.2)
    with pytest.raises(ValueError, match="expected a PushTGoalEnv"):
        PushTExplorer(make_goal_env("two_rooms"), np.random.default_rng(0))


def test_every_state_the_physics_produces_is_a_valid_start_and_goal(tmp_path: Path) -> None:
    """The agent presses the T against the right wall: its origin ends beyond the wall (block_x > 1, as in collected
    data: 1.045), and that state resets the env exactly. A dataset task the env refuses is skipped, counted and
    named by the goal sampler (never a crash mid-evaluation); a dataset of agent-only states is refused by name."""
    env = make_goal_env("pusht", image_size=SIZE, terminate_on_success=False)
    env.reset(seed=0, options={"start": [0.6, 0.5, 0.85, 0.5, math.pi / 2]})
    for _ in range(40):
        info = env.step(np.array([1.0, 0.0]))[4]
    pressed = info["state"]
    assert pressed[2] > 1.0  # the block's origin beyond the table's edge, put there by the physics
    _, again = env.reset(options={"start": pressed, "goal": pressed})
    np.testing.assert_allclose(again["state"], pressed, atol=1e-5)
    assert again["success_pose"]
    lo, hi = env.block_bounds
    assert lo < 0.0 and 1.0 < pressed[2] < hi
    # a dataset: episode 0 fine, episode 1 holds a state no push can reach (block 0.5 beyond the table)
    from hf_jepa.data.lerobot import LeRobotWriter

    frames = np.zeros((8, 16, 16, 3), np.uint8)
    good = np.tile(np.float32([0.3, 0.3, 0.5, 0.5, 0.0]), (8, 1))
    bad = good.copy()
    bad[5:, 2] = 1.5
    with LeRobotWriter(tmp_path / "d", fps=10) as writer:
        writer.add_episode({"observation.image": frames}, good, np.zeros((8, 2), np.float32))
        writer.add_episode({"observation.image": frames}, bad, np.zeros((8, 2), np.float32))
    tasks = sample_dataset_goals(tmp_path / "d", goal_offset=2, episodes=8, seed=0, check_state=env.check_state,
                                 state_dim=5)
    assert len(tasks) == 8 and all(t.goal[2] == 0.5 and t.start[2] == 0.5 for t in tasks)
    assert tasks.skipped and all(r.startswith("episode 1 frames") and "block_x=1.5" in r for r in tasks.skipped)
    everything = sample_dataset_goals(tmp_path / "d", goal_offset=2, episodes=8, seed=0)  # no check: all kept
    assert everything.skipped == [] and any(t.goal[2] == 1.5 for t in everything)
    with pytest.raises(ValueError, match=r"only 9 .* tasks the env accepts.*episode 1 frames"):
        sample_dataset_goals(tmp_path / "d", goal_offset=2, episodes=10, seed=0, check_state=env.check_state)
    with pytest.raises(ValueError, match=r"has 5 values per frame but the env's states have 2.*cannot reset"):
        sample_dataset_goals(tmp_path / "d", goal_offset=2, episodes=2, state_dim=2)


def test_exploration_makes_contact_and_moves_the_block() -> None:
    """The explorer touches the block in a good share of steps and pushes it around; a correlated random walk
    almost never does. Seeded: the same generator gives the same actions."""
    env = make_goal_env("pusht", image_size=SIZE, terminate_on_success=False)
    policy = make_exploration_policy(env, np.random.default_rng(0))
    assert isinstance(policy, PushTExplorer)
    stats, actions = [], []
    for ep in range(3):
        obs, info = env.reset(seed=ep)
        policy.reset(info)
        states, infos = [info["state"]], []
        for _ in range(60):
            action = policy(obs, info)
            assert action.shape == (2,) and np.linalg.norm(action) <= 1.0 + 1e-6
            actions.append(action)
            obs, _, _, _, info = env.step(action)
            states.append(info["state"])
            infos.append(info)
        stats.append(env.unwrapped.episode_statistics(np.stack(states), infos))
    assert np.mean([s["contact_fraction"] for s in stats]) > 0.1
    assert min(s["block_path"] for s in stats) > 20.0  # px pushed in every episode
    replay = make_exploration_policy(env, np.random.default_rng(0))
    obs, info = env.reset(seed=0)
    replay.reset(info)
    for expected in actions[:20]:
        action = replay(obs, info)
        np.testing.assert_array_equal(action, expected)
        obs, _, _, _, info = env.step(action)


def test_collection_writes_a_readable_dataset(pusht_data: Path) -> None:
    info = json.loads((pusht_data / "meta" / "info.json").read_text())
    assert info["robot_type"] == "pusht" and info["total_episodes"] == 3 and info["total_frames"] == 3 * 17
    assert info["features"]["observation.state"]["names"] == list(STATE_NAMES)
    assert info["features"]["action"]["names"] == ["dx", "dy"]
    assert info["features"]["observation.image"]["shape"] == [SIZE, SIZE, 3]
    reader = LeRobotTrajectoryDataset(pusht_data, frames_per_window=3, frame_skip=2, shuffle=False)
    items = list(reader)
    assert len(items) == reader.expected_num_windows() == 3 * (17 - 6 + 1)
    first = items[0]
    assert first["frames"].shape == (3, 3, SIZE, SIZE) and first["frames"].dtype == torch.uint8
    assert first["states"].shape == (3, 5) and first["actions"].shape == (3, 2)
    env = make_goal_env("pusht", image_size=SIZE)
    _, reset_info = env.reset(seed=5)  # episode 0 was reset with seed 5
    np.testing.assert_allclose(first["states"][0].numpy(), reset_info["state"], atol=1e-6)
    states = episode_states(pusht_data)
    assert sorted(states) == [0, 1, 2] and states[0].shape == (17, 5)


def test_dataset_goal_protocol_on_two_episodes(pusht_data: Path, tmp_path: Path) -> None:
    """LeWM's protocol through scripts/evaluate_planning.py: start = the state at frame t, goal = the state at
    t + goal_offset, budget 2 x goal_offset env steps; the JSON records each episode's task and last-step metrics."""
    tasks = sample_dataset_goals(pusht_data, goal_offset=4, episodes=2, seed=0)
    again = sample_dataset_goals(pusht_data, goal_offset=4, episodes=2, seed=0)  # seeded
    assert [(t.episode_index, t.start_frame) for t in tasks] == [(t.episode_index, t.start_frame) for t in again]
    states = episode_states(pusht_data)
    for task in tasks:
        assert task.goal_frame == task.start_frame + 4 and task.goal_frame < 17
        np.testing.assert_array_equal(task.start, states[task.episode_index][task.start_frame])
        np.testing.assert_array_equal(task.goal, states[task.episode_index][task.goal_frame])
    with pytest.raises(ValueError, match="fewer than episodes=100"):
        sample_dataset_goals(pusht_data, goal_offset=4, episodes=100)
    model_dir = tmp_path / "wm"
    tiny_pusht_world_model().save_pretrained(model_dir)
    out = tmp_path / "eval"
    results = load_script("evaluate_planning").main([
        "--model", str(model_dir), "--env", "pusht", "--dataset", str(pusht_data), "--goal_offset", "4",
        "--episodes", "2", "--num_samples", "8", "--topk", "2", "--iterations", "1", "--horizon", "2",
        "--adapt_steps", "0", "--device", "cpu", "--json", str(out / "planning.json")])
    saved = json.loads((out / "planning.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["episodes"] == 2 and saved["env"] == "pusht" and saved["max_steps"] == 8
    assert saved["protocol"] == {"kind": "dataset_goals", "goal_offset": 4, "eval_budget": 8, "skipped_tasks": 0,
                                 "skipped": []}
    assert saved["dataset"] == str(pusht_data)
    assert {"coverage", "success_pose", "success_coverage", "position_error", "angle_error"} <= set(saved["final"])
    for record, task in zip(saved["per_episode"], tasks, strict=True):
        assert (record["dataset_episode"], record["start_frame"], record["goal_frame"]) == (
            task.episode_index, task.start_frame, task.goal_frame)
        np.testing.assert_allclose(record["start"], task.start, atol=1e-6)  # the env started at the data's state
        np.testing.assert_allclose(record["goal"], task.goal, atol=1e-6)
        assert record["steps"] <= 8 and 0.0 <= record["final"]["coverage"] <= 1.0
        assert not record["success"] or record["final"]["success_coverage"]  # a success ends the episode
        assert isinstance(record["success_at_start"], bool)
    assert saved["success_at_start_rate"] == np.mean([r["success_at_start"] for r in saved["per_episode"]])


def test_world_model_and_env_widths_must_match() -> None:
    """A world model trained on 2-D states (the Hub's lerobot/pusht keeps the agent position only) cannot plan in
    the 5-D Push-T env: evaluation says so before planning; the planner names the widths too."""
    model = tiny_pusht_world_model(state_dim=2)
    config = planner_config(model, horizon=2, num_samples=4, topk=2, iterations=1)
    with pytest.raises(ValueError, match=r"state_dim=2.*'pusht' has states of width 5"):
        evaluate_planning(model, env="pusht", episodes=1, config=config, show_progress=False)
    env = make_goal_env("pusht", image_size=SIZE)
    obs, info = env.reset(seed=0)
    with pytest.raises(ValueError, match=r"state has 5 values but the world model takes state_dim=2"):
        WorldModelPlanner(model, config).plan(obs, info["goal"], info["state"])
    with pytest.raises(SystemExit, match=r"env='push_t' is unknown.*'pusht'"):
        load_script("evaluate_planning").main(["--model", "unused", "--env", "push_t"])


def test_pusht_planner_recipe() -> None:
    """`--env pusht` plans with Push-T's CEM recipe (a quarter of the bound as the first std, 128 x 16, H 5) under
    either spelling of the env; explicit settings still win; Two-Rooms keeps its own; a bad scale is named."""
    from hf_jepa.planning.run import PlanningArguments

    model = tiny_pusht_world_model(state_dim=5)
    k = float(model.config.frame_skip)
    for name in ("pusht", "hf_jepa/PushT-v0"):
        config = planner_config(model, "cem", env=name)
        assert (config.init_std, config.num_samples, config.iterations, config.horizon, config.topk) == (
            0.25 * k, 128, 16, 5, 6)
        assert config.min_std == 0.05 * k and config.max_norm == k and config.return_best
    assert planner_config(model, "cem", env="pusht", num_samples=64, init_std_scale=0.5).init_std == 0.5 * k
    two_rooms = planner_config(model, "cem", env="two_rooms")
    assert (two_rooms.init_std, two_rooms.num_samples, two_rooms.horizon) == (k, 300, 6)
    assert planner_config(model, "mppi", env="pusht").num_samples == 300  # the recipe is CEM's
    with pytest.raises(ValueError, match=r"init_std_scale=0: expected a positive float"):
        planner_config(model, "cem", env="pusht", init_std_scale=0)
    assert PlanningArguments(model="m", env="pusht", init_std_scale=0.3).init_std_scale == 0.3
