"""The Space's Plan tab in Push-T: one MPC episode of a tiny random world model (state_dim 5, action_dim 2) through
`plan_in_pusht` and through the /plan_pusht endpoint of a launched app, one episode of a tiny world model trained with
perfect perception (`--latents state`, its state_latents.json read from its folder or Hub repo), the start and goal
pictures, the errors of a goal outside the arena, of a missing Push-T world model and of a world model of other
widths."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BROWSER_TIMEOUT_S, hub_cache_snapshot, launch_space, load_script, tiny_pusht_world_model
from PIL import Image

import hf_jepa.space as space
from hf_jepa.data.state_latents import STATE_LATENTS_FILE
from hf_jepa.envs import make_goal_env
from hf_jepa.planning import planner_config
from hf_jepa.space import hub_files
from hf_jepa.space.pusht import (
    DEFAULT_GOAL,
    PushTPlanOutput,
    from_sliders,
    plan_in_pusht,
    pusht_scene,
    pusht_status,
    random_pusht_task,
    render_pusht,
    to_sliders,
)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SIZE = 32  # the tiny world model's image side
DISPLAY = 96  # the Space's display size in these tests
START = (0.2, 0.25, 0.4, 0.45, 0.0)
GOAL = (0.25, 0.8, 0.5, 0.5, math.pi / 4)


def _tiny_world_model(root: Path, state_dim: int = 5, action_dim: int = 2, name: str = "pusht_wm") -> str:
    """A randomly initialised JepaWorldModel of the given widths, saved under `root / name`."""
    torch.manual_seed(0)
    tiny_pusht_world_model(state_dim, action_dim, SIZE).save_pretrained(root / name)
    return str(root / name)


@pytest.fixture(scope="module")
def world_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _tiny_world_model(tmp_path_factory.mktemp("pusht_models"))


def test_plan_in_pusht_runs_one_episode(world_model: str, tmp_path: Path) -> None:
    """4 env steps (2 replans of 2 env steps each, tiny CEM): the GIF and goal PNG, the episode starting at the
    rendered start, the final measures equal to the env's on the last state, and the summary naming them."""
    model = space.load_model(world_model, "Push-T world model")
    cem = planner_config(model, "cem", horizon=2, num_samples=8, topk=2, iterations=1)
    steps = []
    out = plan_in_pusht(model, START, GOAL, cem=cem, max_steps=4, seed=0, adapt_steps=0, display_size=DISPLAY,
                        out_dir=tmp_path / "plan", progress=lambda i, n: steps.append((i, n)))
    assert isinstance(out, PushTPlanOutput)
    episode = out.episode
    assert len(episode.actions) == 4 and episode.num_replans == 2 and steps == [(0, 4), (2, 4)]
    assert len(episode.frames) == len(episode.states) == len(out.distances) == 5 and len(out.energies) == 2
    np.testing.assert_array_equal(episode.frames[0], render_pusht(START, size=SIZE))  # the planner's first image
    np.testing.assert_array_equal(episode.goal, render_pusht(GOAL, size=SIZE))  # its goal image
    np.testing.assert_allclose(episode.states[0], START, atol=1e-6)
    with Image.open(out.trajectory_gif) as gif:
        assert gif.format == "GIF" and gif.n_frames >= 2 and gif.size == (DISPLAY, DISPLAY)
    np.testing.assert_array_equal(np.asarray(Image.open(out.goal_png).convert("RGB")),
                                  render_pusht(GOAL, size=DISPLAY))
    env = make_goal_env("pusht", image_size=SIZE)
    final = np.asarray(episode.states[-1], dtype=np.float64)
    corners, position, angle = env.unwrapped.pose_errors(final, np.asarray(GOAL))
    assert out.position_error == pytest.approx(position, abs=1e-5)
    assert out.angle_error == pytest.approx(angle, abs=1e-5) and out.distances[-1] == pytest.approx(corners, abs=1e-5)
    assert out.coverage == pytest.approx(env.unwrapped.coverage(final, np.asarray(GOAL)), abs=1e-5)
    assert out.success_pose is episode.success is False  # a random model does not push the block onto the goal
    assert "**Did not reach the goal pose** in 4 steps (limit 4)" in out.summary
    assert f"coverage success no ({100 * out.coverage:.1f}% of the goal T covered, success above 95%)" in out.summary
    assert f"Final block position error {out.position_error:.3f}" in out.summary
    assert f"angle error {math.degrees(out.angle_error):.1f} deg" in out.summary
    assert f"Planning {episode.seconds_per_action:.2f} s per action" in out.summary




@pytest.fixture(scope="module")
def state_world_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny `--latents state` world model: 2 training steps on 6 expert_mix episodes of 30 steps (no video)."""
    root = tmp_path_factory.mktemp("pusht_state")
    load_script("collect_trajectories").main([
        "--env", "pusht", "--policy", "expert_mix", "--no_render", "--episodes", "6", "--steps_per_episode", "30",
        "--output_dir", str(root / "data"), "--seed", "0"])
    load_script("train_world_model").main([
        "--latents", "state", "--dataset_name", str(root / "data"), "--output_dir", str(root / "wm"),
        "--max_steps", "2", "--frames_per_window", "3", "--auto_steps", "2", "--frame_skip", "5", "--state_mode",
        "hold", "--per_device_train_batch_size", "8", "--log_every", "1", "--checkpointing_steps", "100",
        "--config_overrides", json.dumps({"predictor_hidden_size": 32, "predictor_num_hidden_layers": 1,
                                          "predictor_num_attention_heads": 2, "predictor_intermediate_size": 64})])
    return str(root / "wm" / "final")


def test_plan_in_pusht_with_a_state_world_model(state_world_model: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A world model trained with perfect perception plans from the true states: its state_latents.json is read
    from its folder, the planner never encodes an image, and the summary says it aimed at the goal state with the
    state latents; without the latents the model is refused (planning it from images would be meaningless)."""
    model = space.load_model(state_world_model, "Push-T world model")
    loaded = space.load_model_state_latents(state_world_model, "Push-T world model", model)
    assert loaded is not None and loaded[0].kind == "pusht_keypoints" and loaded[1]["frame_skip"] == 5
    assert space.load_model_state_latents(state_world_model, "Push-T world model", model) is loaded  # cached

    def no_images(*args: object, **kwargs: object) -> None:
        raise AssertionError("a state world model's planner encoded an image")

    monkeypatch.setattr(model, "encode", no_images)
    cem = planner_config(model, "cem", horizon=2, num_samples=8, topk=2, iterations=1)
    steps = []
    out = plan_in_pusht(model, START, GOAL, cem=cem, max_steps=10, seed=0, adapt_steps=0, display_size=DISPLAY,
                        out_dir=tmp_path / "plan", progress=lambda i, n: steps.append((i, n)), state_latents=loaded)
    assert len(out.episode.actions) == 10 and steps == [(0, 10), (5, 10)] and len(out.energies) == 2
    assert "in 10 steps (limit 10)" in out.summary and "Aimed at the goal image" not in out.summary
    assert out.summary.endswith("Aimed at the goal state with perfect perception: the true state as the latent "
                                "(state latents `pusht_keypoints` from state_latents.json: the agent and the T's 8 "
                                "corners, 24-D), no image encoder.")
    with Image.open(out.trajectory_gif) as gif:
        assert gif.size == (DISPLAY, DISPLAY)
    with pytest.raises(space.ModelUnavailable, match="reads states .* needs the state_latents.json"):
        plan_in_pusht(model, START, GOAL, cem=cem, max_steps=5)
    latents, record = loaded
    with pytest.raises(space.ModelUnavailable, match=r"unit_px=50 .*unit_px=100 \(the env's action_scale\)"):
        plan_in_pusht(model, START, GOAL, cem=cem, max_steps=5,
                      state_latents=(latents, {**record, "action": {"kind": "relative", "unit_px": 50.0}}))


def test_state_latents_of_hub_world_models(state_world_model: str, world_model: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Given as Hub ids (resolved offline from a pre-populated HF cache): the state world model's state_latents.json
    comes through the Space's hub_file; an image world model whose file cannot be had plans from images (None); a
    state world model whose file cannot be had is refused, saying why."""
    from huggingface_hub import constants

    bare = tmp_path / "bare"  # the state world model without its state_latents.json
    shutil.copytree(state_world_model, bare)
    (bare / STATE_LATENTS_FILE).unlink()
    for repo, folder in (("org/pusht-state", state_world_model), ("org/pusht-pixels", world_model),
                         ("org/pusht-state-bare", bare)):
        hub_cache_snapshot(tmp_path / "hub", repo, Path(folder))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_files.clear_hub_cache()
    try:
        state_model = space.load_model(state_world_model, "Push-T world model")
        pixel_model = space.load_model(world_model, "Push-T world model")
        latents, record = space.load_model_state_latents("org/pusht-state", "Push-T world model", state_model)
        assert latents.kind == "pusht_keypoints" and record["action"] == {"kind": "relative", "unit_px": 100.0}
        assert space.load_model_state_latents("org/pusht-pixels", "Push-T world model", pixel_model) is None
        with pytest.raises(space.ModelUnavailable, match=r"`org/pusht-state-bare` reads states .* could not be had "
                                                         r"now: .*hf download org/pusht-state-bare state_latents"):
            space.load_model_state_latents("org/pusht-state-bare", "Push-T world model", state_model)
    finally:
        hub_files.clear_hub_cache()


def test_pusht_scene_outlines_the_goal() -> None:
    """The start preview is the start's picture with the goal's T and agent outlined: unchanged where nothing is
    drawn, orange on the goal's outline (a goal equal to the start outlines the block itself)."""
    plain, scene = render_pusht(START, size=DISPLAY), pusht_scene(START, GOAL, size=DISPLAY)
    changed = np.any(plain != scene, axis=-1)
    assert 0 < changed.mean() < 0.2
    assert np.all(scene[changed] == (230, 110, 20))
    np.testing.assert_array_equal(pusht_scene(START, None, size=DISPLAY), plain)


def test_slider_values_are_degrees_and_random_tasks_fit_the_sliders() -> None:
    """The picker's 10 sliders hold start then goal with angles in degrees; Random's states lie within the sliders'
    position range [0.02, 0.98] and are seeded."""
    assert to_sliders(START, GOAL) == [0.2, 0.25, 0.4, 0.45, 0.0, 0.25, 0.8, 0.5, 0.5, 45.0]
    start, goal = from_sliders([0.2, 0.25, 0.4, 0.45, -90.0, 0.25, 0.8, 0.5, 0.5, 45.0])
    np.testing.assert_allclose(start, [0.2, 0.25, 0.4, 0.45, -math.pi / 2])
    np.testing.assert_allclose(goal, GOAL)
    for seed in range(5):
        values = to_sliders(*random_pusht_task(seed))
        positions = [v for i, v in enumerate(values) if i % 5 != 4]
        assert all(0.02 <= v <= 0.98 for v in positions) and all(-180 <= v <= 180 for v in values[4::5])
        assert values == to_sliders(*random_pusht_task(seed))


@pytest.mark.parametrize("goal, match", [
    ((0.25, 0.8, 1.3, 0.5, 0.0), r"goal=.* is outside the arena \(block_x=1\.3\): expected .*position in "
                                 r"\[0\.0137, 0\.9844\].*block's origin in \[-0\.2225, 1\.2206\]"),
    ((-0.1, 0.8, 0.5, 0.5, 0.0), r"goal=.* is outside the arena \(agent_x=-0\.1\)"),
    ((0.25, 0.8, 0.5, 0.5, float("nan")), r"goal=.*nan.* is invalid: expected .*a finite angle in radians"),
])
def test_goal_outside_the_arena_is_a_clear_error(world_model: str, goal: tuple, match: str) -> None:
    model = space.load_model(world_model, "Push-T world model")
    cem = planner_config(model, "cem", horizon=2, num_samples=8, topk=2, iterations=1)
    with pytest.raises(ValueError, match=match) as caught:
        plan_in_pusht(model, START, goal, cem=cem, max_steps=2)
    assert isinstance(caught.value, space.InputError)  # shown to the user as it is


@pytest.mark.parametrize("state_dim, action_dim", [(2, 2), (5, 3)])
def test_world_model_of_other_widths_is_a_clear_error(tmp_path: Path, state_dim: int, action_dim: int) -> None:
    model = space.load_model(_tiny_world_model(tmp_path, state_dim, action_dim), "Push-T world model")
    cem = planner_config(model, "cem", horizon=2, num_samples=8, topk=2, iterations=1)
    expected = (rf"Push-T needs a world model with state_dim=5 \(agent_x, .*\) and action_dim=2 \(dx, dy\); this one "
                rf"has state_dim={state_dim} and action_dim={action_dim}. Set HF_JEPA_PUSHT_WORLD_MODEL")
    with pytest.raises(space.ModelUnavailable, match=expected):
        plan_in_pusht(model, START, GOAL, cem=cem, max_steps=2)


def test_missing_pusht_model_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not configured: the status and the plan name SpaceConfig.pusht_world_model and HF_JEPA_PUSHT_WORLD_MODEL;
    configured but absent: the status says how to make one; the variable sets the field."""
    monkeypatch.delenv(space.ENV_PUSHT_WORLD_MODEL, raising=False)
    monkeypatch.chdir(tmp_path)  # no outputs/demo_pusht here
    config = space.SpaceConfig.from_env()
    assert config.pusht_world_model is None
    ok, message = pusht_status(config)
    assert not ok and message.startswith("**Model missing.** No Push-T world model is configured: set "
                                         "HF_JEPA_PUSHT_WORLD_MODEL (SpaceConfig.pusht_world_model)")
    with pytest.raises(space.ModelUnavailable, match=r"set HF_JEPA_PUSHT_WORLD_MODEL \(SpaceConfig.pusht_world_model"):
        config.pusht_source()
    monkeypatch.setenv(space.ENV_PUSHT_WORLD_MODEL, str(tmp_path / "absent"))
    config = space.SpaceConfig.from_env()
    assert config.pusht_world_model == str(tmp_path / "absent")
    ok, message = pusht_status(config)
    assert not ok and "scripts/demo.py --env pusht" in message and "HF_JEPA_PUSHT_WORLD_MODEL" in message


def _pusht_status_text(url: str) -> str:
    import httpx

    components = httpx.get(f"{url}config", timeout=30).json()["components"]
    radio = [c for c in components if c.get("props", {}).get("elem_id") == "plan-env"]
    assert [choice[0] for choice in radio[0]["props"]["choices"]] == ["Two-Rooms", "Push-T"]
    return next(c["props"]["value"] for c in components if c.get("props", {}).get("elem_id") == "pusht-status")


@pytest.fixture(scope="module")
def app_url(world_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Space with only the Push-T world model (the other tabs' models are missing), shown at DISPLAY px, with a
    tiny default planning budget (4 env steps, 8 CEM samples, 1 iteration, horizon 2)."""
    missing = str(tmp_path_factory.mktemp("missing") / "none")
    config = space.SpaceConfig(encoder=missing, probe_model=missing, world_model=missing,
                               pusht_world_model=world_model, display_size=DISPLAY, examples=0, max_steps=4,
                               num_samples=8, iterations=1, horizon=2)
    yield from launch_space(config)


def test_plan_pusht_endpoint(app_url: str, world_model: str) -> None:
    """/plan_pusht takes the sliders (angles in degrees) and the planner settings: the goal image is the goal
    state's; the Push-T panel's status names the model."""
    client_module = pytest.importorskip("gradio_client")
    assert _pusht_status_text(app_url) == f"Model: `{world_model}` (folder)."
    client = client_module.Client(app_url, verbose=False)
    degrees = [*START[:4], 0.0, *GOAL[:4], 45.0]
    gif, goal, plot, summary = client.predict(*degrees, 2, 8, 1, 2, 0, api_name="/plan_pusht")
    assert Image.open(gif).size == (DISPLAY, DISPLAY) and plot is not None
    np.testing.assert_array_equal(np.asarray(Image.open(goal).convert("RGB")), render_pusht(GOAL, size=DISPLAY))
    assert "in 2 steps (limit 2)" in summary and "Final block position error" in summary


def test_plan_pusht_endpoint_with_a_state_world_model(state_world_model: str, tmp_path: Path) -> None:
    """/plan_pusht with a `--latents state` world model configured: the plan aims at the goal state (the summary
    says so) and the goal image is still the goal state's picture."""
    client_module = pytest.importorskip("gradio_client")
    missing = str(tmp_path / "none")
    config = space.SpaceConfig(encoder=missing, probe_model=missing, world_model=missing,
                               pusht_world_model=state_world_model, display_size=DISPLAY, examples=0)
    for url in launch_space(config):
        client = client_module.Client(url, verbose=False)
        gif, goal, _, summary = client.predict(*START[:4], 0.0, *GOAL[:4], 45.0, 5, 8, 1, 2, 0,
                                               api_name="/plan_pusht")
        np.testing.assert_array_equal(np.asarray(Image.open(goal).convert("RGB")), render_pusht(GOAL, size=DISPLAY))
        assert "in 5 steps (limit 5)" in summary and "Aimed at the goal state with perfect perception" in summary


@pytest.mark.timeout(BROWSER_TIMEOUT_S)
def test_browser_pusht_picker(app_url: str, tmp_path: Path) -> None:
    """In the browser: the environment radio swaps the Two-Rooms panel for the Push-T one, a slider change redraws
    the start preview, and a plan shows its summary."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium to run the browser test")
    playwright = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.goto(app_url)
        page.get_by_role("button", name="Plan ▶").wait_for(timeout=60_000)
        assert not page.get_by_role("button", name="Plan Push-T ▶").is_visible()
        page.get_by_label("Push-T", exact=True).check()
        page.get_by_role("button", name="Plan Push-T ▶").wait_for(timeout=15_000)
        assert not page.get_by_role("button", name="Plan ▶").is_visible()
        preview = page.locator("#pusht-start img")
        before = preview.get_attribute("src")
        angle = page.get_by_label("number input for Start block angle (deg)")
        angle.fill("90")
        angle.press("Enter")
        page.wait_for_function("([el, src]) => el.getAttribute('src') !== src", arg=[preview.element_handle(), before],
                               timeout=15_000)
        page.get_by_role("button", name="Plan Push-T ▶").click()
        page.locator("#pusht-summary").get_by_text("Final block position error").wait_for(timeout=60_000)
        page.locator("#pusht-trajectory img").wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "space_pusht.png"), full_page=True)
        assert (tmp_path / "space_pusht.png").stat().st_size > 10_000
        browser.close()


def test_plan_pusht_endpoint_without_a_model(tmp_path: Path) -> None:
    """No Push-T world model configured: the app builds, the Push-T panel says what to set, and a plan asked anyway
    is refused with that message, not a crash."""
    client_module = pytest.importorskip("gradio_client")
    config = space.SpaceConfig(encoder=str(tmp_path / "none"), probe_model=str(tmp_path / "none"),
                               world_model=str(tmp_path / "none"), pusht_world_model=None, examples=0)
    for url in launch_space(config):
        assert "HF_JEPA_PUSHT_WORLD_MODEL (SpaceConfig.pusht_world_model)" in _pusht_status_text(url)
        client = client_module.Client(url, verbose=False)
        with pytest.raises(client_module.exceptions.AppError, match="No Push-T world model is configured: set "
                                                                    "HF_JEPA_PUSHT_WORLD_MODEL") as caught:
            client.predict(*START[:4], 0.0, *DEFAULT_GOAL[:4], 45.0, 2, 8, 1, 2, 0, api_name="/plan_pusht")
        assert "Traceback" not in str(caught.value)
