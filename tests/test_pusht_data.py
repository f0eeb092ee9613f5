"""Push-T data at scale: the scripted expert, state-only collection in worker processes (the same data whatever the
worker count), the render pass (frames equal to the env's, readable by the LeRobot reader), perfect-perception
latents, a world model trained on them through scripts/train_world_model.py --latents state and planned through
scripts/evaluate_planning.py, the Hub layout's absolute actions, and the action-standardisation errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from test_lerobot import HUB_LENGTHS, write_hub_pusht

from hf_jepa.data.lerobot import LeRobotTrajectoryDataset, LeRobotWriter, episode_states
from hf_jepa.data.state_latents import StateLatents, load_state_latents, state_latent_cache
from hf_jepa.envs import PushTGoalEnv, make_goal_env
from hf_jepa.envs.pusht import keypoint_latents
from hf_jepa.envs.pusht_data import check_action_space, collect_pusht_states, render_trajectories
from hf_jepa.envs.pusht_policy import PushTExpert

ROOT = Path(__file__).resolve().parents[1]




@pytest.fixture(scope="module")
def states_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 episodes x 30 steps of the expert mix: 2 expert blocks (the expert and 3 noisy replays), 1 exploration."""
    root = tmp_path_factory.mktemp("pusht_states") / "data"
    load_script("collect_trajectories").main([
        "--env", "pusht", "--policy", "expert_mix", "--no_render", "--episodes", "10", "--steps_per_episode", "30",
        "--output_dir", str(root), "--seed", "0", "--explore_fraction", "0.3"])
    return root


def test_expert_pushes_the_block_onto_its_goal_pose() -> None:
    """With the env's goal, the expert reaches gym-pusht's pose tolerance (20 px, pi/9) in most episodes within 200
    steps, from random starts."""
    env = make_goal_env("pusht", image_size=32, terminate_on_success=False)
    reached = 0
    for ep in range(4):
        _, info = env.reset(seed=ep)
        expert = PushTExpert(env, np.random.default_rng(ep), goal_from_env=True)
        expert.reset(info)
        state = info["state"]
        for _ in range(200):
            action = expert(None, {"state": state})
            assert action.shape == (2,) and np.linalg.norm(action) <= 1.0 + 1e-6
            state = env.unwrapped.advance(action)
            if expert.reached(state):
                reached += 1
                break
    assert reached >= 3
    with pytest.raises(ValueError, match="push_speed=0"):
        PushTExpert(env, np.random.default_rng(0), push_speed=0)


def test_state_only_collection_is_the_same_with_any_worker_count(states_data: Path, tmp_path: Path) -> None:
    info = json.loads((states_data / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 10 and info["total_frames"] == 10 * 31 and info["video_path"] is None
    assert "observation.image" not in info["features"] and not (states_data / "videos").exists()
    assert info["hf_jepa"]["action"] == {"kind": "relative", "unit_px": 100.0}
    assert info["hf_jepa"]["state"]["resettable"] and info["hf_jepa"]["noise_levels"] == [0.1, 0.25, 0.5]
    tasks = set(__import__("pandas").read_parquet(states_data / "meta" / "tasks.parquet").index)
    assert tasks <= {"explore pusht", "expert pusht noise 0", "expert pusht noise 0.1", "expert pusht noise 0.25",
                     "expert pusht noise 0.5"} and "expert pusht noise 0" in tasks
    two = collect_pusht_states(tmp_path / "two", episodes=10, steps_per_episode=30, seed=0, workers=2,
                               explore_fraction=0.3)
    one, other = episode_states(states_data), episode_states(two.root)
    assert sorted(one) == sorted(other) == list(range(10))
    for e in one:
        np.testing.assert_array_equal(one[e], other[e])
    # a replay starts where its expert episode started and stays within the physics' bounds
    env = PushTGoalEnv(image_size=32)
    for e in one:
        assert one[e].shape == (31, 5)
        for s in one[e][::10]:
            env.check_state(s)
    with pytest.raises(ValueError, match=r"noise_levels=\[-0.1\]"):
        collect_pusht_states(tmp_path / "bad", episodes=2, noise_levels=[-0.1])


def test_render_pass_writes_frames_of_the_states(states_data: Path, tmp_path: Path) -> None:
    """The second pass renders each stored state (as the env draws it) into a video the LeRobot reader reads."""
    out = render_trajectories(states_data, tmp_path / "px", image_size=32, episodes=[1, 2], workers=2)
    ds = LeRobotTrajectoryDataset(out.root, frames_per_window=2, frame_skip=5, shuffle=False)
    info = json.loads((out.root / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["hf_jepa"]["rendered"] and info["hf_jepa"]["image_size"] == 32
    source = episode_states(states_data)
    env = PushTGoalEnv(image_size=32)
    item = next(iter(ds))
    ep = item["episode_index"]
    rows = item["frame_index"].numpy()
    np.testing.assert_allclose(item["states"].numpy(), source[ep + 1][rows])
    expected = np.stack([env.render_state(s) for s in source[ep + 1][rows]])  # (2, 32, 32, 3)
    got = item["frames"].permute(0, 2, 3, 1).numpy().astype(np.float32)
    assert np.abs(got - expected).mean() < 6.0  # H.264 at crf 18
    with pytest.raises(ValueError, match="episodes=\\[99\\]"):
        render_trajectories(states_data, tmp_path / "px2", episodes=[99])


def test_keypoint_latents_are_the_env_corners() -> None:
    env = PushTGoalEnv(image_size=32)
    states = np.array([[0.3, 0.4, 0.5, 0.6, 0.7], [0.1, 0.9, 1.04, 0.2, -2.5]])
    latents = keypoint_latents(states)  # (2, 24)
    assert latents.shape == (2, 24) and np.all(latents[:, 18:] == 0)
    for s, z in zip(states, latents, strict=True):
        corners = env.corners(np.array([s[2] * 512, s[3] * 512, s[4]])) / 512  # (8, 2)
        np.testing.assert_allclose(z[2:18].reshape(8, 2) / 4 + 0.5, corners, atol=1e-6)
        np.testing.assert_allclose(z[:2] / 4 + 0.5, s[:2], atol=1e-6)
    with pytest.raises(ValueError, match="expected \\(..., 5\\)"):
        keypoint_latents(np.zeros((3, 2)))


def test_state_world_model_trains_and_plans_with_perfect_perception(states_data: Path, tmp_path: Path) -> None:
    """--latents state: no encoder and no video; the saved folder carries state_latents.json, evaluation plans
    toward the goal state's latent and refuses a model trained on another action unit."""
    cache, latents, _ = state_latent_cache(str(states_data))
    assert latents.kind == "pusht_keypoints" and cache.latents[0].shape == (31, 1, 24)
    out = tmp_path / "wm"
    load_script("train_world_model").main([
        "--latents", "state", "--dataset_name", str(states_data), "--output_dir", str(out), "--max_steps", "3",
        "--frames_per_window", "3", "--auto_steps", "2", "--frame_skip", "5", "--state_mode", "hold",
        "--per_device_train_batch_size", "8", "--log_every", "1", "--checkpointing_steps", "100",
        "--config_overrides", json.dumps({"predictor_hidden_size": 32, "predictor_num_hidden_layers": 1,
                                          "predictor_num_attention_heads": 2, "predictor_intermediate_size": 64})])
    loaded, record = load_state_latents(out / "final")
    assert loaded.kind == "pusht_keypoints" and record["action"] == {"kind": "relative", "unit_px": 100.0}
    assert record["frame_skip"] == 5
    model = __import__("transformers").AutoModel.from_pretrained(out / "final")
    assert model.config.predict_residual and not model.config.normalize_latents and model.config.state_dim == 5
    results = load_script("evaluate_planning").main([
        "--model", str(out / "final"), "--env", "pusht", "--dataset", str(states_data), "--goal_offset", "10",
        "--episodes", "2", "--num_samples", "8", "--topk", "2", "--iterations", "1", "--horizon", "2",
        "--adapt_steps", "0", "--device", "cpu", "--success", "pose", "--json", str(tmp_path / "ev.json")])
    assert results["latents"] == "state" and results["episodes"] == 2 and results["protocol"]["skipped_tasks"] == 0
    # the planner encodes the state, not the image: the observation latents are the state's keypoints
    record["action"] = {"kind": "relative", "unit_px": 50.0}
    (out / "final" / "state_latents.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"unit_px=50.*unit_px=100 \(the env's action_scale\)"):
        load_script("evaluate_planning").main(["--model", str(out / "final"), "--env", "pusht", "--dataset",
                                           str(states_data), "--goal_offset", "10", "--episodes", "1"])


def test_standardized_state_latents_for_other_states() -> None:
    states = [np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 5.0]], np.float32)]
    latents = StateLatents.for_dataset(["a", "b", "c"], states)
    assert latents.kind == "standardized" and latents.width == 4
    z = latents(states[0])
    np.testing.assert_allclose(z[:, 0], [-1, 1], atol=1e-4)
    assert latents.tensor(states[0][0]).shape == (1, 1, 4)


def test_hub_layout_absolute_actions_become_relative(tmp_path: Path) -> None:
    """The Hub's lerobot/pusht: PD targets (px) -> (target - agent) / 100; its agent-only states are not resettable
    and cannot start an evaluation episode."""
    root = tmp_path / "hub"
    states, actions = write_hub_pusht(root)
    ds = LeRobotTrajectoryDataset(root, frames_per_window=2, frame_skip=3, shuffle=False, absolute_action_unit=100.0)
    assert not ds.state_resettable
    items = list(ds)
    assert len(items) == sum(n - 6 + 1 for n in HUB_LENGTHS)
    for item in items:
        ep, t0 = item["episode_index"], int(item["frame_index"][0])
        relative = (actions[ep][t0:t0 + 6] - states[ep][t0:t0 + 6]) / 100.0  # (6, 2)
        np.testing.assert_allclose(item["actions"].numpy(), relative.reshape(2, 3, 2).sum(1), rtol=1e-5, atol=1e-5)
    from hf_jepa.planning import sample_dataset_goals

    with pytest.raises(ValueError, match="has 2 values per frame but the env's states have 5.*cannot reset"):
        sample_dataset_goals(root, goal_offset=3, episodes=2, state_dim=5)


def test_mixed_action_standardisations_are_refused(states_data: Path, tmp_path: Path) -> None:
    # converting data that already holds relative actions
    with pytest.raises(ValueError, match="declares relative actions; converting them as absolute"):
        _reader_on_states(states_data)
    # absolute targets (px) appended to a dataset declaring relative actions
    mixed = tmp_path / "mixed"
    with LeRobotWriter(mixed, fps=10, state_names=list(PushTGoalEnv.state_names)) as writer:
        writer.add_episode({}, np.full((6, 5), 0.5, np.float32), np.zeros((6, 2), np.float32))
        writer.add_episode({}, np.full((6, 5), 0.5, np.float32), np.full((6, 2), 300.0, np.float32))
    info = json.loads((mixed / "meta" / "info.json").read_text())
    info["hf_jepa"] = {"action": {"kind": "relative", "unit_px": 100.0}}
    (mixed / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="episode 1 holds an action of norm 424.3.*absolute targets mixed"):
        state_latent_cache(str(mixed))
    with pytest.raises(ValueError, match="unit_px=100 but relative actions with unit_px=50"):
        check_action_space(info, unit_px=50.0, where="training")
    check_action_space({}, unit_px=50.0, where="data without a record")  # nothing declared: nothing refused
    assert torch.is_tensor(StateLatents("pusht_keypoints", state_dim=5).tensor(np.full(5, 0.5)))


def _reader_on_states(root: Path) -> None:
    """The reader's absolute-action check runs before it looks for a camera: a rendered copy is not needed."""
    import shutil

    copy = root.parent / "with_video_meta"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(root, copy)
    info = json.loads((copy / "meta" / "info.json").read_text())
    info["features"]["observation.image"] = {"dtype": "video", "shape": [8, 8, 3]}
    (copy / "meta" / "info.json").write_text(json.dumps(info))
    LeRobotTrajectoryDataset(copy, frames_per_window=2, absolute_action_unit=100.0)


def test_max_episodes_takes_the_first_episodes(states_data: Path) -> None:
    """Data-size curves train on the first N episodes of one collection (the same episodes a smaller collection with
    the same seed holds)."""
    from hf_jepa.world_model import WorldModelArguments

    full, _, _ = state_latent_cache(str(states_data))
    part, _, _ = state_latent_cache(str(states_data), max_episodes=4)
    assert len(full.latents) == 10 and len(part.latents) == 4
    for a, b in zip(part.latents, full.latents[:4], strict=False):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="max_episodes=3: expected an int >= 1, with --latents state"):
        WorldModelArguments(max_episodes=3)


def test_concat_actions_give_a_10d_action_per_model_step(states_data: Path) -> None:
    """--action_reduce concat: with frame skip 5 a model step's action is the 5 env actions side by side (10-D)."""
    cache, _, _ = state_latent_cache(str(states_data))
    summed = cache.window(0, 2, 3, 5)
    concat = cache.window(0, 2, 3, 5, action_reduce="concat")
    assert summed["actions"].shape == (3, 2) and concat["actions"].shape == (3, 10)
    torch.testing.assert_close(concat["actions"][1], cache.actions[0][7:12].flatten())
    torch.testing.assert_close(concat["actions"].view(3, 5, 2).sum(1), summed["actions"])
    batch = next(cache.batches(0, batch_size=4, frames_per_window=3, frame_skip=5, seed=0, action_reduce="concat"))
    assert batch["actions"].shape == (4, 3, 10)
    out = states_data.parent / "wm_concat"
    load_script("train_world_model").main([
        "--latents", "state", "--action_reduce", "concat", "--dataset_name", str(states_data), "--output_dir",
        str(out), "--max_steps", "2", "--frames_per_window", "3", "--auto_steps", "1", "--frame_skip", "5",
        "--state_mode", "hold", "--per_device_train_batch_size", "4", "--checkpointing_steps", "100",
        "--config_overrides", json.dumps({"predictor_hidden_size": 32, "predictor_num_hidden_layers": 1,
                                          "predictor_num_attention_heads": 2, "predictor_intermediate_size": 64})])
    assert json.loads((out / "final" / "config.json").read_text())["action_dim"] == 10
    _plans_concat_actions_in_turn(out / "final")


def _plans_concat_actions_in_turn(folder: Path) -> None:
    """A concat world model plans 10-D actions (each 2-D part in the env's unit ball) and MPC executes the 5 parts
    in turn, not a repeated mean."""
    from transformers import AutoModel

    from hf_jepa.planning import WorldModelPlanner
    from hf_jepa.planning.evaluation import check_model_fits_env, planner_config

    model = AutoModel.from_pretrained(folder).eval()
    assert (model.config.action_reduce, model.config.env_action_dim) == ("concat", 2)
    env = make_goal_env("pusht", image_size=64)
    check_model_fits_env(model, env, "pusht")  # 10-D model actions, 2-D env actions: fits
    config = planner_config(model, "cem", env="pusht", horizon=2, num_samples=16, topk=4, iterations=2)
    assert (config.norm_groups, float(config.action_high), config.max_norm) == (5, 1.0, 1.0)
    latents, _ = load_state_latents(str(folder))
    planner = WorldModelPlanner(model, config, state_encoder=latents.tensor)
    obs, info = env.reset(seed=0)
    result = planner.plan_fn(seed=0, action_repeat=5)(obs, obs, info)
    planned = planner._previous  # (H, 10): what the search returned
    assert planned.shape == (2, 10) and result.actions.shape == (10, 2)
    torch.testing.assert_close(result.actions, planned.reshape(10, 2))
    assert float(result.actions.norm(dim=-1).max()) <= 1.0 + 1e-5
    assert not torch.allclose(result.actions[0], result.actions[1])  # the parts differ: executed in turn
