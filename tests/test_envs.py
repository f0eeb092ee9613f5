"""Two-Rooms env, the goal-image adapter with a second toy env, and the exploration policies."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hf_jepa.envs as E
from hf_jepa.envs import (
    GoalImageEnv,
    RandomRolloutGoal,
    TwoLinkArmEnv,
    TwoRoomsConfig,
    TwoRoomsEnv,
    TwoRoomsExplorer,
    make_exploration_policy,
    make_goal_env,
)

CFG = TwoRoomsConfig()
LEFT_X = 0.25
FAR_FROM_DOOR_Y = 0.8


def rollout(env: gym.Env, seed: int, n: int = 30) -> tuple[list[np.ndarray], list[np.ndarray]]:
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, states = [obs], [info["state"]]
    for _ in range(n):
        obs, _, _, _, info = env.step(rng.uniform(-1, 1, size=2))
        observations.append(obs)
        states.append(info["state"])
    return observations, states


def test_determinism_same_seed_same_episode():
    a_obs, a_states = rollout(TwoRoomsEnv(terminate_on_success=False), seed=7)
    b_obs, b_states = rollout(TwoRoomsEnv(terminate_on_success=False), seed=7)
    for x, y in zip(a_obs, b_obs, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(np.stack(a_states), np.stack(b_states))
    c_obs, _ = rollout(TwoRoomsEnv(terminate_on_success=False), seed=8)
    assert not np.array_equal(a_obs[0], c_obs[0])


def test_observation_and_reset_contract():
    env = TwoRoomsEnv()
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    assert info["goal"].shape == (64, 64, 3) and info["goal"].dtype == np.uint8
    assert info["state"].shape == (2,) and info["state"].dtype == np.float32
    np.testing.assert_array_equal(info["goal"], env.render_state(info["goal_state"]))
    np.testing.assert_array_equal(obs, env.render())
    # default: the goal lies in the other room (PLDM setting)
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert env.room_of(info["state"]) != env.room_of(info["goal_state"])
    # the agent is drawn at its state: pixel floor(state * S) has the agent colour
    _, info = env.reset(options={"start": (0.3, 0.7), "goal": (0.7, 0.3)})
    obs = env.render()
    np.testing.assert_array_equal(obs[int(0.7 * 64), int(0.3 * 64)], CFG.agent_color)
    assert tuple(obs[32, 31]) == CFG.wall_color and tuple(obs[0, 0]) == CFG.wall_color  # middle wall, border
    assert tuple(obs[int(CFG.door_center_y * 64), 31]) != CFG.wall_color  # the door is open (lit floor)
    # the halo lights the floor only, and fades with distance from the agent
    near, far = obs[int(0.7 * 64), int(0.4 * 64)], obs[int(0.7 * 64), int(0.1 * 64)]  # 0.1 and 0.2 from the agent
    assert int(near.sum()) > int(far.sum()) > sum(CFG.floor_color)
    dark = TwoRoomsEnv(agent_glow=0.0)
    dark.reset(options={"start": (0.3, 0.7), "goal": (0.7, 0.3)})
    assert tuple(dark.render()[int(CFG.door_center_y * 64), 31]) == CFG.floor_color


def test_same_room_goals_with_ratio_zero():
    env = TwoRoomsEnv(other_room_goal_prob=0.0)
    for seed in range(10):
        _, info = env.reset(seed=seed)
        assert env.room_of(info["state"]) == env.room_of(info["goal_state"])
        assert np.linalg.norm(info["state"] - info["goal_state"]) >= CFG.min_goal_distance


def test_wall_blocks_motion():
    env = TwoRoomsEnv(terminate_on_success=False)
    env.reset(options={"start": (LEFT_X, FAR_FROM_DOOR_Y), "goal": (0.75, 0.5)})
    for _ in range(30):
        _, _, _, _, info = env.step(np.array([1.0, 0.0]))
    slab_lo, slab_hi = CFG.wall_slab
    assert info["state"][0] == pytest.approx(slab_lo) and env.room_of(info["state"]) == 0
    assert info["state"][1] == pytest.approx(FAR_FROM_DOOR_Y)  # no drift along the wall
    # diagonal push into the wall: slides along it, never passes
    for _ in range(10):
        _, _, _, _, info = env.step(np.array([1.0, 0.3]))
        assert info["state"][0] <= slab_lo + 1e-9
    # from the right room, pushing left
    env.reset(options={"start": (0.75, FAR_FROM_DOOR_Y), "goal": (0.25, 0.5)})
    for _ in range(30):
        _, _, _, _, info = env.step(np.array([-1.0, 0.0]))
    assert info["state"][0] == pytest.approx(slab_hi)
    # outer walls
    for _ in range(40):
        _, _, _, _, info = env.step(np.array([0.0, 1.0]))
    assert info["state"][1] == pytest.approx(CFG.center_bounds[1])


def test_door_lets_agent_through():
    env = TwoRoomsEnv(terminate_on_success=False)
    env.reset(options={"start": (LEFT_X, CFG.door_center_y), "goal": (0.75, 0.8)})
    for _ in range(20):
        _, _, _, _, info = env.step(np.array([1.0, 0.0]))
    assert env.room_of(info["state"]) == 1 and info["state"][0] > CFG.wall_slab[1]
    # inside the doorway the agent cannot leave it vertically
    env.reset(options={"start": (0.5, CFG.door_center_y), "goal": (0.75, 0.8)})
    for _ in range(10):
        _, _, _, _, info = env.step(np.array([0.0, 1.0]))
    assert info["state"][1] == pytest.approx(CFG.door_span[1]) and info["state"][0] == pytest.approx(0.5)
    assert env.is_free(info["state"])


def test_success_rule_and_termination():
    env = TwoRoomsEnv()
    _, info = env.reset(options={"start": (0.2, 0.5), "goal": (0.26, 0.5)})
    assert info["distance"] == pytest.approx(0.06) and not info["success"]
    _, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
    assert info["distance"] == pytest.approx(0.03) and info["success"] and terminated and not truncated
    assert reward == pytest.approx(-0.03)
    env = TwoRoomsEnv(terminate_on_success=False)
    env.reset(options={"start": (0.2, 0.5), "goal": (0.26, 0.5)})
    _, _, terminated, _, info = env.step(np.array([1.0, 0.0]))
    assert info["success"] and not terminated


def test_truncation_at_max_episode_steps():
    env = TwoRoomsEnv(max_episode_steps=5)
    env.reset(options={"start": (0.2, 0.2), "goal": (0.8, 0.8)})
    flags = [env.step(np.zeros(2))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_action_norm_bound():
    env = TwoRoomsEnv(terminate_on_success=False, max_episode_steps=1000)
    env.reset(options={"start": (0.25, 0.6), "goal": (0.75, 0.6)})
    _, _, _, _, info = env.step(np.array([10.0, 0.0]))  # projected onto the unit ball
    assert info["state"][0] == pytest.approx(0.25 + CFG.max_norm)
    rng = np.random.default_rng(0)
    prev = info["state"]
    for _ in range(200):
        _, _, _, _, info = env.step(rng.normal(0, 5, size=2))
        assert np.linalg.norm(info["state"] - prev) <= CFG.max_norm + 1e-6
        assert env.is_free(info["state"])
        prev = info["state"]


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="door_width"):
        TwoRoomsConfig(door_width=0.05)
    with pytest.raises(ValueError, match="max_norm"):
        TwoRoomsConfig(max_norm=-1.0)
    with pytest.raises(ValueError, match="unknown config fields"):
        TwoRoomsEnv(door_size=0.1)
    with pytest.raises(ValueError, match="start"):
        TwoRoomsEnv().reset(options={"start": (0.5, 0.9)})  # inside the wall


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gymnasium_make():
    env = gym.make("hf_jepa/TwoRooms-v0", image_size=32)
    obs, info = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and info["goal"].shape == (32, 32, 3)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert {"state", "distance", "success", "goal"} <= set(info)
    assert E.TWO_ROOMS_ID in gym.registry and E.TWO_LINK_ARM_ID in gym.registry
    check_env(env.unwrapped)  # gymnasium's own contract checks (seeding, spaces, fresh infos)
    check_env(GoalImageEnv(TwoLinkArmEnv(), goal_fn=RandomRolloutGoal(5), success_radius=0.05), skip_render_check=True)


def _drive_arm(env: gym.Env, info: dict, steps: int = 60) -> tuple[bool, dict]:
    arm = env.unwrapped
    for _ in range(steps):
        err = (info["goal_state"] - info["state"] + np.pi) % (2 * np.pi) - np.pi
        _, _, terminated, _, info = env.step(np.clip(err / arm.max_delta, -1, 1))
        if terminated:
            return True, info
    return False, info


def test_goal_image_adapter_with_two_link_arm():
    env = GoalImageEnv(TwoLinkArmEnv(), goal_fn=RandomRolloutGoal(10), success_radius=0.05)
    obs, info = env.reset(seed=3)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    assert info["goal"].shape == (64, 64, 3) and info["goal_state"].shape == (2,) and info["state"].shape == (2,)
    assert not np.array_equal(obs, info["goal"]) and info["distance"] > 0
    np.testing.assert_array_equal(info["goal"], env.unwrapped.render_state(info["goal_state"]))
    # deterministic per seed
    _, info2 = env.reset(seed=3)
    np.testing.assert_array_equal(info["goal"], info2["goal"])
    # a P-controller in joint space reaches the goal: success + termination, and the image matches the goal
    done, info = _drive_arm(env, info2)
    assert done and info["success"] and info["distance"] < 0.05
    assert np.abs(env.render().astype(int) - info["goal"].astype(int)).mean() < 5


def test_make_goal_env_for_gymnasium_ids():
    env = make_goal_env("hf_jepa/TwoLinkArm-v0", image_size=32, success_radius=0.05)
    assert isinstance(env, GoalImageEnv)
    obs, info = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and info["goal"].shape == (32, 32, 3)
    # Two-Rooms through the adapter: the goal comes from info, images resized
    wrapped = GoalImageEnv(TwoRoomsEnv(), success_radius=CFG.success_radius, image_size=32)
    obs, info = wrapped.reset(seed=0)
    assert obs.shape == (32, 32, 3) and info["goal_state"].shape == (2,)
    assert isinstance(make_goal_env("two_rooms", image_size=48), TwoRoomsEnv)
    with pytest.raises(ValueError, match="render_mode"):
        GoalImageEnv(TwoLinkArmEnv(render_mode=None), success_radius=0.1)
    with pytest.raises(KeyError, match="goal"):
        GoalImageEnv(TwoLinkArmEnv(), success_radius=0.1).reset(seed=0)


def test_exploration_covers_both_rooms_and_is_seeded():
    env = TwoRoomsEnv(terminate_on_success=False)

    def run(seed: int) -> np.ndarray:
        obs, info = env.reset(seed=seed)
        policy = TwoRoomsExplorer(env, np.random.default_rng(seed))
        policy.reset(info)
        states = [info["state"]]
        for _ in range(100):
            obs, _, _, _, info = env.step(policy(obs, info))
            states.append(info["state"])
        return np.stack(states)

    np.testing.assert_array_equal(run(0), run(0))
    crossings = [np.count_nonzero(np.diff([env.room_of(s) for s in run(seed)])) for seed in range(10)]
    assert np.mean(crossings) >= 0.5, crossings
    with pytest.raises(ValueError, match="wall_prob"):
        TwoRoomsExplorer(env, np.random.default_rng(0), door_prob=0.5, wall_prob=0.6)


def test_exploration_wall_plans_push_into_the_wall():
    """wall_prob=1: every plan heads straight for the other room, so the agent ends up blocked at the wall."""
    env = TwoRoomsEnv(terminate_on_success=False)
    obs, info = env.reset(seed=0, options={"start": (0.25, 0.7)})
    policy = TwoRoomsExplorer(env, np.random.default_rng(0), door_prob=0.0, wall_prob=1.0, kappa=50.0)
    policy.reset(info)
    blocked = 0
    for _ in range(60):
        before = info["state"]
        action = policy(obs, info)
        obs, _, _, _, info = env.step(action)
        moved = np.linalg.norm(info["state"] - before)
        blocked += moved < 0.5 * np.linalg.norm(action) * env.config.max_norm
    assert blocked >= 10, blocked  # pushes that the wall stopped


def test_exploration_door_edge_pushes_stay_blocked_beside_the_door():
    """door_edge_prob=1: each wall plan walks to the wall beside the door and pushes into the other room away from
    the door, so the agent slides along the wall without crossing (the transitions a model must see)."""
    env = TwoRoomsEnv(terminate_on_success=False)
    obs, info = env.reset(seed=0, options={"start": (0.25, 0.7)})
    policy = TwoRoomsExplorer(env, np.random.default_rng(1), door_prob=0.0, wall_prob=1.0, door_edge_prob=1.0,
                              kappa=50.0)
    policy.reset(info)
    door_lo, door_hi = env.config.door_span
    beside = 0
    for _ in range(120):
        before = info["state"]
        action = policy(obs, info)
        obs, _, _, _, info = env.step(action)
        s = info["state"]
        assert env.room_of(s) == 0, s  # never through the door
        at_wall = s[0] >= env.config.wall_slab[0] - 1e-6
        near_door = door_lo - 0.25 < s[1] < door_hi + 0.25
        blocked = np.linalg.norm(s - before) < 0.9 * np.linalg.norm(action) * env.config.max_norm
        beside += bool(at_wall and near_door and blocked)
    assert beside >= 10, beside
    with pytest.raises(ValueError, match="door_edge_prob"):
        TwoRoomsExplorer(env, np.random.default_rng(0), door_edge_prob=1.5)


def test_correlated_policy_for_other_envs():
    arm = TwoLinkArmEnv()
    policy = make_exploration_policy(arm, np.random.default_rng(0))
    _, info = arm.reset(seed=0)
    policy.reset(info)
    for _ in range(20):
        assert arm.action_space.contains(policy(None, info))


def _plan_speeds(wall_prob: float, steps: int = 3000) -> np.ndarray:
    """Action norms of TwoRoomsExplorer away from waypoints (the plan speed, before the slow-down near a waypoint)."""
    env = TwoRoomsEnv(terminate_on_success=False)
    obs, info = env.reset(seed=0)
    policy = TwoRoomsExplorer(env, np.random.default_rng(0), door_prob=1.0 - wall_prob, wall_prob=wall_prob)
    policy.reset(info)
    norms = []
    for _ in range(steps):
        action = policy(obs, info)
        obs, _, _, _, info = env.step(action)
        norms.append(float(np.linalg.norm(action)))
    return np.array(norms)


def test_exploration_speed_does_not_reveal_the_plan_kind():
    """Blocked wall pushes and free door crossings move at the same speeds (drawn per plan, in [min_speed, 1]): a
    world model must learn the wall from the image, not from the action norm. When wall pushes ran at full speed
    only, a trained model predicted every full-speed move as blocked and slower pushes through the wall."""
    pushes, crossings = _plan_speeds(wall_prob=1.0), _plan_speeds(wall_prob=0.0)
    for norms in (pushes, crossings):
        assert norms.max() <= 1.0 + 1e-6 and np.quantile(norms, 0.95) > 0.9  # full speed occurs in both
        assert np.quantile(norms, 0.2) < 0.7  # and so do slow plans
    assert abs(np.median(pushes) - np.median(crossings)) < 0.15, (np.median(pushes), np.median(crossings))


def test_collect_trajectories_records_episodes_of_any_goal_env(tmp_path) -> None:
    """The library's collection loop on the vector-obs arm (goal-image wrapper, correlated random policy): T + 1
    frames per episode, one action per frame, states from the wrapper; bad counts are errors naming the field."""
    import json

    from hf_jepa.data.lerobot import LeRobotTrajectoryDataset
    from hf_jepa.envs.collect import CAMERA_KEY, collect_trajectories

    summary = collect_trajectories(E.TWO_LINK_ARM_ID, tmp_path / "arm", episodes=2, steps_per_episode=5,
                                   image_size=32, seed=3)
    assert (summary.episodes, summary.frames) == (2, 12) and summary.door_crossings == []
    info = json.loads((summary.root / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["total_frames"] == 12
    assert info["features"][CAMERA_KEY]["shape"] == [32, 32, 3]
    assert info["features"]["action"]["shape"] == [2]
    assert LeRobotTrajectoryDataset(summary.root, frames_per_window=6).expected_num_windows() == 2
    with pytest.raises(ValueError, match="steps_per_episode=0: expected >= 1"):
        collect_trajectories("two_rooms", tmp_path / "x", steps_per_episode=0)
