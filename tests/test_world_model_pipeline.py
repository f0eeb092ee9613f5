"""The world-model loop end to end at toy sizes: collect Two-Rooms episodes (LeRobot v3), pretrain an encoder on
them, train the action-conditioned predictor on cached latents, plan one episode, and the pieces in between
(latent cache windows, macro actions, evaluation outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from transformers import AutoModel

import hf_jepa
from hf_jepa.data.trajectories import LatentEpisodeCache
from hf_jepa.data.transforms import frame_transform
from hf_jepa.planning import PlanResult, WorldModelPlanner, evaluate_planning, planner_config
from hf_jepa.world_model import WorldModelArguments

ROOT = Path(__file__).resolve().parents[1]
TINY_ENCODER = json.dumps({"hidden_size": 48, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "intermediate_size": 96, "predictor_hidden_size": 32, "predictor_num_hidden_layers": 1,
                           "predictor_num_attention_heads": 2, "predictor_intermediate_size": 64, "num_frames": 4,
                           "patch_size": 16})  # 4 x 4 latents per frame, as the demo's world model
TINY_PREDICTOR = json.dumps({"predictor_hidden_size": 32, "predictor_num_hidden_layers": 1,
                             "predictor_num_attention_heads": 2, "predictor_intermediate_size": 64})




@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """collect -> pretrain -> train_world_model, each through its script, at toy sizes."""
    tmp = tmp_path_factory.mktemp("wm")
    data, enc, wm = tmp / "two_rooms", tmp / "enc", tmp / "wm"
    load_script("collect_trajectories").main(["--env", "two_rooms", "--episodes", "4", "--steps_per_episode", "30",
                                          "--output_dir", str(data), "--episodes_per_file", "2"])
    load_script("pretrain").main(["--model_type", "vjepa2", "--preset", "tiny", "--config_overrides", TINY_ENCODER,
                              "--dataset_name", str(data), "--output_dir", str(enc), "--max_steps", "2",
                              "--per_device_train_batch_size", "2", "--warmup_steps", "1", "--log_every", "1",
                              "--checkpointing_steps", "2"])
    load_script("train_world_model").main(["--encoder", str(enc / "encoder"), "--dataset_name", str(data),
                                       "--config_overrides", TINY_PREDICTOR, "--output_dir", str(wm),
                                       "--max_steps", "4", "--per_device_train_batch_size", "8",
                                       "--warmup_steps", "1", "--log_every", "1", "--checkpointing_steps", "4",
                                       "--state_mode", "hold", "--save_subgoal_graph"])
    return {"data": data, "encoder": enc / "encoder", "wm": wm}


def test_world_model_training_outputs(pipeline: dict[str, Path]) -> None:
    wm_dir = pipeline["wm"]
    rows = [json.loads(line) for line in (wm_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in rows)
    model, info = AutoModel.from_pretrained(wm_dir / "final", output_loading_info=True)
    assert isinstance(model, hf_jepa.JepaWorldModel)
    assert not info["missing_keys"] and not info["unexpected_keys"], info  # the trained predictor is in the file
    assert model.config.frame_skip == 5 and model.config.state_update == "hold"
    assert (model.config.action_dim, model.config.state_dim) == (2, 2)
    # the encoder inside is the frozen pretrained one, unchanged by world-model training
    encoder = AutoModel.from_pretrained(pipeline["encoder"])
    for name, p in encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], p, rtol=0, atol=0)
    assert "easy_vjepa2_ac" in (wm_dir / "final" / "README.md").read_text()


def test_latent_cache_windows_match_the_episode(pipeline: dict[str, Path]) -> None:
    """Cached windows hold the encoder's latent of each k-th frame and the sum of the k actions in between."""
    model = AutoModel.from_pretrained(pipeline["wm"] / "final").eval()
    from hf_jepa.data.lerobot import LeRobotTrajectoryDataset

    transform = frame_transform(model)
    cache = LatentEpisodeCache.build(str(pipeline["data"]), lambda x: model.encode(x), transform,
                                     show_progress=False)
    assert len(cache.latents) == 4 and cache.latents[0].shape[0] == 31
    reader = LeRobotTrajectoryDataset(str(pipeline["data"]), frames_per_window=31, shuffle=False)
    first = next(iter(reader))  # episode 0, all 31 frames
    w = cache.window(0, 3, frames_per_window=2, frame_skip=5)
    n = cache.latents[0].shape[1]  # tokens per frame
    with torch.no_grad():
        z8 = model.encode(transform(first["frames"][[8]])[None]).squeeze(0)  # (N, D)
    torch.testing.assert_close(w["latents"][n:], z8, atol=2e-3, rtol=0)  # float16 cache
    torch.testing.assert_close(w["actions"][0], torch.as_tensor(first["actions"][3:8]).float().sum(0))
    torch.testing.assert_close(w["states"], torch.as_tensor(first["states"][[3, 8]]).float())
    assert len(cache.windows(4, 5)) == 4 * (31 - 20 + 1)


def test_plan_fn_repeats_macro_actions(pipeline: dict[str, Path]) -> None:
    model = AutoModel.from_pretrained(pipeline["wm"] / "final")
    config = planner_config(model, horizon=2, num_samples=8, topk=2, iterations=2)
    assert config.max_norm == 5.0 and config.action_high in (5.0, (5.0,))
    planner = WorldModelPlanner(model, config)
    env = hf_jepa.envs.make_goal_env("two_rooms")
    obs, info = env.reset(seed=0)
    result = planner.plan_fn(seed=0, action_repeat=5)(obs, info["goal"], info)
    assert isinstance(result, PlanResult) and result.actions.shape == (10, 2)
    torch.testing.assert_close(result.actions[:5], result.actions[:1].expand(5, 2))  # one macro action, 5 times
    assert float(result.actions.norm(dim=-1).max()) <= 1.0 + 1e-5  # env actions stay in the unit ball


def test_mean_and_ramp_reductions_weigh_per_frame_energies(pipeline: dict[str, Path]) -> None:
    model = AutoModel.from_pretrained(pipeline["wm"] / "final").eval()
    config = planner_config(model, horizon=3, num_samples=4, topk=2, iterations=1)
    env = hf_jepa.envs.make_goal_env("two_rooms")
    obs, info = env.reset(seed=1)
    actions = torch.randn(4, 3, 2)
    last = WorldModelPlanner(model, config, reduction="last")
    mean = WorldModelPlanner(model, config, reduction="mean")
    ctx, goal = last.encode(obs), last.encode(info["goal"])
    state = torch.as_tensor(info["state"])
    e_last, e_mean = last.energy_fn(ctx, state, goal)(actions), mean.energy_fn(ctx, state, goal)(actions)
    per_step = [WorldModelPlanner(model, config.replace(horizon=h)).energy_fn(ctx, state, goal)(actions[:, :h])
                for h in (1, 2, 3)]
    torch.testing.assert_close(e_last, per_step[-1])
    torch.testing.assert_close(e_mean, torch.stack(per_step).mean(0), atol=1e-6, rtol=1e-5)
    e_ramp = WorldModelPlanner(model, config, reduction="ramp").energy_fn(ctx, state, goal)(actions)
    weights = torch.tensor([0.1, 0.55, 1.0])  # PLDM's linear ramp from 0.1 (first frame) to 1 (last)
    torch.testing.assert_close(e_ramp, (torch.stack(per_step, 1) @ weights) / weights.sum(), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        WorldModelPlanner(model, config, reduction="max")


def test_planner_history_context(pipeline: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """context_frames=3: rollouts start from the last 3 observed frames and the planned actions executed between
    them, the history shared by every sample; the cached plans equal recomputed ones."""
    model = AutoModel.from_pretrained(pipeline["wm"] / "final").eval()
    config = planner_config(model, horizon=2, num_samples=6, topk=2, iterations=2)
    planners = [WorldModelPlanner(model, config, context_frames=3, use_cache=c) for c in (True, False)]
    env = hf_jepa.envs.make_goal_env("two_rooms")
    obs, info = env.reset(seed=2)
    seen = []
    rollout = model.rollout
    monkeypatch.setattr(model, "rollout", lambda *a, **kw: seen.append((a, kw)) or rollout(*a, **kw))
    frames, executed = [], []
    for _ in range(4):
        seen.clear()
        results = [p.plan(obs, info["goal"], info["state"], generator=torch.Generator().manual_seed(0))
                   for p in planners]
        torch.testing.assert_close(results[0].actions, results[1].actions, atol=1e-5, rtol=0)
        frames.append(obs)
        (latents, actions, states), kw = seen[0]
        t0 = min(len(frames), 3)
        expected = torch.cat([planners[0].encode(f) for f in frames[-t0:]], dim=1)  # (1, T0*N, D)
        torch.testing.assert_close(latents[:1], expected)
        assert kw["shared_prefix"] == t0 - 1 and states.shape[1] == t0
        if t0 > 1:
            torch.testing.assert_close(actions[0, : t0 - 1], torch.stack(executed[-(t0 - 1):]))
        executed.append(results[0].actions[0])
        for _ in range(5):
            obs, _, _, _, info = env.step(results[0].actions[0].numpy() / 5)
    with pytest.raises(ValueError, match="context_frames"):
        WorldModelPlanner(model, config, context_frames=0)
    with pytest.raises(ValueError, match="replan_every=1"):  # the history assumes one planned action per frame
        evaluate_planning(model, episodes=1, config=config, context_frames=2, replan_every=2, show_progress=False)


def test_evaluate_planningload_script(pipeline: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "my runs" / "tmp.pkEJjbmvRF"  # what `mktemp -d` names: a dot (evaluate.save's trap), a space
    results = load_script("evaluate_planning").main([
        "--model", str(pipeline["wm"] / "final"), "--episodes", "2", "--max_steps", "10", "--num_samples", "8",
        "--topk", "2", "--iterations", "2", "--horizon", "2", "--other_room_prob", "0.5",
        "--json", str(out / "planning.json")])
    saved = json.loads((out / "planning.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for key in ("success_rate", "episodes", "mean_final_distance", "seconds_per_action", "planner"):
        assert key in saved
    assert saved["episodes"] == 2 and 0.0 <= saved["success_rate"] <= 1.0
    assert saved["planner"]["num_samples"] == 8 and saved["planner"]["horizon"] == 2
    assert saved["mean_steps"] <= 10 and saved["frame_skip"] == 5
    records = saved["per_episode"]  # one per episode, enough to replay it
    assert [r["seed"] for r in records] == [0, 1] and sum(r["success"] for r in records) == saved["successes"]
    env = hf_jepa.envs.make_goal_env("two_rooms", other_room_goal_prob=0.5)
    for r in records:
        _, info = env.reset(seed=r["seed"])
        np.testing.assert_allclose(r["start"], info["state"], atol=1e-6)
        np.testing.assert_allclose(r["goal"], env.unwrapped.goal_state, atol=1e-6)
        assert r["steps"] <= 10 and isinstance(r["other_room"], bool)
    import imageio.v2 as imageio

    gif = imageio.mimread(out / "planning_episode.gif")
    assert len(gif) >= 3 and gif[0].shape[1] > gif[0].shape[0]  # observation beside goal
    assert (out / "planning_energy.png").stat().st_size > 1000
    evaluated = json.loads(next(out.glob("result-*.json")).read_text())  # evaluate.save of the scalar results
    assert evaluated["success_rate"] == saved["success_rate"] and evaluated["model"] == str(pipeline["wm"] / "final")
    assert evaluated["mean_final_distance"] == pytest.approx(
        np.mean([r["final_distance"] for r in records]))


def test_evaluation_is_seeded(pipeline: dict[str, Path]) -> None:
    model = AutoModel.from_pretrained(pipeline["wm"] / "final")
    config = planner_config(model, horizon=2, num_samples=8, topk=2, iterations=2)
    runs = [evaluate_planning(model, episodes=1, seed=3, config=config, max_steps=10, show_progress=False)
            for _ in range(2)]
    np.testing.assert_array_equal(np.stack(runs[0].episodes[0].actions), np.stack(runs[1].episodes[0].actions))
    assert runs[0].results["success_rate"] == runs[1].results["success_rate"]


def test_world_model_arguments_validation() -> None:
    with pytest.raises(ValueError, match="auto_steps"):
        WorldModelArguments(frames_per_window=2, auto_steps=2)
    with pytest.raises(ValueError, match="state_mode"):
        WorldModelArguments(state_mode="sometimes")
    with pytest.raises(ValueError, match="config_overrides"):
        WorldModelArguments(config_overrides="[1, 2]")


def test_online_adaptation_learns_the_observed_transition(pipeline: dict[str, Path]) -> None:
    """Test-time adaptation: after observing (frame, executed action, next frame), the predictor's one-step error
    on that transition drops; reset() restores the trained weights exactly; evaluation leaves the model as trained."""
    from hf_jepa.planning.adaptation import OnlineAdaptation

    model = AutoModel.from_pretrained(pipeline["wm"] / "final").eval()
    trained = {k: v.clone() for k, v in model.predictor.state_dict().items()}
    env = hf_jepa.envs.make_goal_env("two_rooms")
    obs, info = env.reset(seed=1)
    planner = WorldModelPlanner(model, planner_config(model, horizon=2, num_samples=6, topk=2, iterations=2))
    action = torch.tensor([0.0, -5.0])  # one planned action = 5 env steps (frame_skip 5)
    for _ in range(5):
        nxt, _, _, _, next_info = env.step(action.numpy() / 5)
    z0, z1 = planner.encode(obs), planner.encode(nxt)
    state0 = torch.as_tensor(info["state"], dtype=torch.float32)

    def one_step_error() -> float:
        with torch.no_grad():
            pred = model.rollout(z0, action[None, None], state0[None, None])  # (1, N, D)
        return float((pred - z1).abs().mean())

    before = one_step_error()
    adaptation = OnlineAdaptation(model, steps=5, lr=1e-3)
    adaptation.observe(z0, state0, None)  # the episode's first frame: nothing to learn yet
    assert adaptation.num_transitions == 0 and adaptation.last_loss is None
    adaptation.observe(z1, torch.as_tensor(next_info["state"], dtype=torch.float32), action)
    assert adaptation.num_transitions == 1
    assert one_step_error() < 0.8 * before
    adaptation.reset()
    for k, v in model.predictor.state_dict().items():
        torch.testing.assert_close(v, trained[k], atol=0, rtol=0)
    assert one_step_error() == pytest.approx(before, abs=1e-6)

    config = planner_config(model, horizon=2, num_samples=8, topk=2, iterations=2)
    runs = [evaluate_planning(model, episodes=1, seed=3, config=config, max_steps=15, adapt_steps=a,
                              adapt_lr=1e-3, show_progress=False) for a in (0, 2, 2)]
    assert runs[1].results["adapt_steps"] == 2 and runs[1].results["adapt_lr"] == 1e-3
    assert WorldModelPlanner(model, config, adapt_steps=1).model is not model  # adapts its own copy
    # the first plan is made before anything was observed; later ones see the adapted model
    np.testing.assert_array_equal(runs[0].episodes[0].actions[0], runs[1].episodes[0].actions[0])
    assert not np.array_equal(np.stack(runs[0].episodes[0].actions), np.stack(runs[1].episodes[0].actions))
    np.testing.assert_array_equal(np.stack(runs[1].episodes[0].actions), np.stack(runs[2].episodes[0].actions))
    for k, v in model.predictor.state_dict().items():
        torch.testing.assert_close(v, trained[k], atol=0, rtol=0)
    with pytest.raises(ValueError, match="adapt_steps=-1"):
        WorldModelPlanner(model, config, adapt_steps=-1)
    with pytest.raises(ValueError, match="lr=0"):
        OnlineAdaptation(model, steps=1, lr=0)
    with pytest.raises(ValueError, match="replan_every=1"):
        evaluate_planning(model, episodes=1, config=config, adapt_steps=1, replan_every=2, show_progress=False)


def test_evaluate_planning_script_with_subgoals(pipeline: dict[str, Path], tmp_path: Path) -> None:
    """`--subgoals DATA`: a graph over the training data's frames (4 episodes x 31 frames, every 5th kept), encoded
    with the world model's own encoder; `train_world_model.py --save_subgoal_graph` saved the same graph beside the
    model (from the latents training cached), and `--subgoals FILE` plans the same episode with it."""
    from hf_jepa.planning.subgoals import GRAPH_FILENAME, LatentSubgoalGraph, SubgoalConfig

    final = pipeline["wm"] / "final"
    model = AutoModel.from_pretrained(final)
    graph = LatentSubgoalGraph.from_dataset(str(pipeline["data"]), model, SubgoalConfig(stride=5, lookahead=2),
                                            show_progress=False)
    assert graph.nodes.shape[0] == 4 * 7 and graph.nodes.shape[1:] == (16, model.config.encoder_config.hidden_size)
    saved = LatentSubgoalGraph.load(final / GRAPH_FILENAME)
    assert saved.config == SubgoalConfig()  # train_world_model's --subgoal_stride default
    torch.testing.assert_close(saved.nodes, graph.nodes, rtol=0, atol=0)
    assert torch.equal(saved.episode_of, graph.episode_of)
    flags = ["--model", str(final), "--episodes", "1", "--max_steps", "10", "--num_samples", "8", "--topk", "2",
             "--iterations", "2", "--horizon", "2", "--subgoal_lookahead", "2"]
    from_data = load_script("evaluate_planning").main(
        flags + ["--subgoals", str(pipeline["data"]), "--json", str(tmp_path / "data.json")])
    assert from_data["subgoals"] == {"stride": 5, "lookahead": 2, "link_scale": SubgoalConfig.link_scale}
    assert from_data["episodes"] == 1 and from_data["mean_steps"] <= 10
    from_file = load_script("evaluate_planning").main(
        flags + ["--subgoal_dataset", str(final / GRAPH_FILENAME), "--json", str(tmp_path / "file.json")])
    assert from_file["subgoals"] == from_data["subgoals"]
    assert from_file["success_rate"] == from_data["success_rate"]
    assert from_file["mean_final_distance"] == pytest.approx(from_data["mean_final_distance"], abs=1e-6)


def test_planner_aims_at_the_subgoal(pipeline: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """With a subgoal graph, each plan's energy is measured against the graph's subgoal for (current frame, goal)."""
    from hf_jepa.planning.subgoals import LatentSubgoalGraph, SubgoalConfig

    model = AutoModel.from_pretrained(pipeline["wm"] / "final").eval()
    cache = LatentEpisodeCache.build(str(pipeline["data"]), model.encode,
                                     frame_transform(model), show_progress=False)
    graph = LatentSubgoalGraph.from_episodes([z.float() for z in cache.latents], SubgoalConfig(stride=2, lookahead=1))
    planner = WorldModelPlanner(model, planner_config(model, horizon=2, num_samples=6, topk=2, iterations=2),
                                subgoals=graph)
    env = hf_jepa.envs.make_goal_env("two_rooms")
    obs, info = env.reset(seed=2)
    asked, aimed = [], []
    subgoal, energy_fn = graph.subgoal, planner.energy_fn
    monkeypatch.setattr(graph, "subgoal", lambda z, g: asked.append((z, g)) or subgoal(z, g))
    monkeypatch.setattr(planner, "energy_fn", lambda c, s, g, p=None: aimed.append(g) or energy_fn(c, s, g, p))
    planner.plan(obs, info["goal"], info["state"])
    (z, g), = asked
    torch.testing.assert_close(z, planner.encode(obs))
    torch.testing.assert_close(g, planner.encode(info["goal"]))
    torch.testing.assert_close(aimed[0], subgoal(z, g))


def test_meta_ac_recipe_runs_tiny_with_state_delta_actions(pipeline: dict[str, Path], tmp_path: Path) -> None:
    """configs/meta/vjepa2_ac/vitg16-droid-256px-8f.yaml, shrunk by flags, on the Two-Rooms data: frames at 4 fps
    (10 fps data: every 3rd frame), actions from state deltas (Two-Rooms states are positions), Meta's centre crop,
    warmup-stable-decay with the one-step offset."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    out = tmp_path / "ac"
    load_script("train_world_model").main([
        str(ROOT / "configs" / "meta" / "vjepa2_ac" / "vitg16-droid-256px-8f.yaml"),
        "--encoder", str(pipeline["encoder"]), "--dataset_name", str(pipeline["data"]), "--camera_key", "none",
        "--preset", "tiny", "--config_overrides", TINY_PREDICTOR, "--actions", "state_delta",
        "--frames_per_window", "4", "--per_device_train_batch_size", "4", "--global_batch_size", "4",
        "--mixed_precision", "no", "--max_steps", "3", "--schedule_steps", "4", "--warmup_steps", "1",
        "--decay_steps", "2", "--checkpointing_steps", "3", "--log_every", "1", "--output_dir", str(out)])
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # WSD over 4 steps, warmup 1, decay 2, offset 1: s = 1 (peak), 2 (decay start: peak), 3 (half way to 0)
    assert [r["lr"] for r in rows] == pytest.approx([4.25e-4, 4.25e-4, 4.25e-4 / 2], rel=1e-9)
    model = AutoModel.from_pretrained(out / "final")
    assert model.config.frame_skip == 3 and model.config.action_dim == 2
