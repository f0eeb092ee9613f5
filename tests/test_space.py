"""The Gradio Space: launched on 127.0.0.1 with the demo's digits stages run at a tiny scale (encoder and probe
trained by scripts/pretrain.py and scripts/probe.py on a small variant of the built-in textured moving digits) and a
tiny random world model; gradio_client calls each endpoint; Playwright (Debian's chromium) runs a plan in the browser,
checks click-to-place, an invalid upload and a built-in example clip on the Probe tab, and takes a screenshot
(docs/space.png with HF_JEPA_SAVE_SCREENSHOT=1). Hostile uploads (empty, truncated, the wrong content behind the
extension, decompression bombs, too long) are refused with a message naming the file, and the app keeps serving; files
of Hub repos are retried on transient errors, reported and fetched again later (hf_hub_download monkeypatched, no
network)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import types
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BROWSER_TIMEOUT_S, HUB_COMMIT, hub_cache_snapshot, launch_space, load_script
from PIL import Image

import hf_jepa
import hf_jepa.space as space
from hf_jepa.envs.two_rooms import TwoRoomsEnv
from hf_jepa.space import hub_files

gradio_client = pytest.importorskip("gradio_client", reason="the Space tests need gradio and gradio_client")
ui = pytest.importorskip("hf_jepa.space.ui", reason="the Space needs gradio (pip install 'gradio>=6.31,<7')")

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ENCODER = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=96, predictor_hidden_size=24, predictor_num_hidden_layers=1,
               predictor_num_attention_heads=2, predictor_intermediate_size=48, num_mask_tokens=2)
DIGIT_LABELS = {str(d) for d in range(10)}  # the `digit` column's class names
STEPS = 2  # pretraining steps of the tiny digits encoder




@pytest.fixture(scope="module", autouse=True)
def builtin_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The built-in data of these tests (the digits and the example clips' source) go to a temp HF_JEPA_CACHE."""
    cache = tmp_path_factory.mktemp("hf_jepa_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_JEPA_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, builtin_cache: Path) -> dict:
    """The demo's digits stages at a tiny scale: scripts/pretrain.py (V-JEPA 2 tiny shrunk to the ENCODER sizes,
    STEPS steps) on a small variant of the built-in textured moving digits, then scripts/probe.py (attentive probe on
    `digit`) on its frozen encoder."""
    import datasets
    from accelerate.state import AcceleratorState, GradientState

    from hf_jepa.data.builtin import builtin_dataset_path

    root = tmp_path_factory.mktemp("digits")
    data = builtin_dataset_path("textured_moving_digits", num_train=16, num_test=8, num_shards=2)
    overrides = {k: v for k, v in ENCODER.items() if k != "num_mask_tokens"}
    with pytest.MonkeyPatch.context() as mp:
        # datasets sleeps 5 s after each full pass over a parquet stream (apache/arrow#45214 workaround)
        mp.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        try:
            load_script("pretrain").main([
                "--model_type", "vjepa2", "--preset", "tiny", "--dataset_name", str(data), "--config_overrides",
                json.dumps(overrides), "--max_steps", str(STEPS), "--per_device_train_batch_size", "4",
                "--warmup_steps", "1", "--log_every", "1", "--checkpointing_steps", "1000",
                "--output_dir", str(root / "pretrain")])
        finally:
            AcceleratorState._reset_state(True)
            GradientState._reset_state()
        results = load_script("probe").main([
            "--model", str(root / "pretrain" / "encoder"), "--dataset_name", str(data), "--label_column", "digit",
            "--probe", "attentive", "--epochs", "2", "--batch_size", "4", "--feature_batch_size", "4",
            "--output_dir", str(root / "probe")])
    return {"data": data, "encoder": root / "pretrain" / "encoder", "probe": root / "probe" / "classifier",
            "results": results}


def _tiny_world_model(root: Path) -> str:
    torch.manual_seed(0)
    wm_config = hf_jepa.JepaWorldModelConfig(
        encoder_config=hf_jepa.VideoJepaConfig(**ENCODER), predictor_hidden_size=24, predictor_num_hidden_layers=1,
        predictor_num_attention_heads=2, predictor_intermediate_size=48, action_dim=2, state_dim=2)
    hf_jepa.JepaWorldModel(wm_config).save_pretrained(root / "world_model")
    return str(root / "world_model")


def _tiny_models(root: Path, digits: dict) -> space.SpaceConfig:
    return space.SpaceConfig(encoder=str(digits["encoder"]), probe_model=str(digits["probe"]),
                             world_model=_tiny_world_model(root), num_samples=16, iterations=2, horizon=2,
                             max_steps=3)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from torchcodec.encoders import VideoEncoder

    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(root / "image.png")
    video = torch.from_numpy(rng.integers(0, 255, (12, 3, 48, 48), dtype=np.uint8))
    VideoEncoder(video, frame_rate=8).to_file(str(root / "clip.mp4"))
    (root / "notes.txt").write_text("not an image")
    return {"image": root / "image.png", "video": root / "clip.mp4", "text": root / "notes.txt"}


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, digits: dict) -> Iterator[str]:
    config = _tiny_models(tmp_path_factory.mktemp("models"), digits)
    yield from launch_space(config)


@pytest.fixture(scope="module")
def client(app_url: str) -> gradio_client.Client:
    return gradio_client.Client(app_url, verbose=False)


def test_space_imports_without_gradio() -> None:
    """Only hf_jepa.space.ui imports gradio (an optional extra): the rest of the Space's modules load without it, and
    `hf_jepa.space.build_demo` says gradio is missing only when it is asked for."""
    check = ("import sys; sys.modules['gradio'] = None\n"
             "import hf_jepa.space, hf_jepa.space.config, hf_jepa.space.models, hf_jepa.space.media\n"
             "import hf_jepa.space.features, hf_jepa.space.two_rooms, hf_jepa.space.pusht, hf_jepa.space.hub_files\n"
             "import hf_jepa.space.load\n"
             "try:\n    hf_jepa.space.build_demo\nexcept ImportError:\n    print('no gradio')\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no gradio"


def test_api_names(client: gradio_client.Client) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/features", "/probe", "/plan"} <= set(endpoints)


@pytest.mark.parametrize("kind, shape", [("image", (192, 3 * 192 + 2 * 4, 3)),  # [input | PCA | attention]
                                         ("video", (3 * 192 + 2 * 4, 2 * 192 + 4, 3))])  # 4 frames / tubelet 2
def test_features_endpoint(client: gradio_client.Client, media: dict[str, Path], kind: str,
                           shape: tuple[int, int, int]) -> None:
    panel, info = client.predict(gradio_client.handle_file(str(media[kind])), api_name="/features")
    image = np.asarray(Image.open(panel))
    assert image.shape == shape
    assert "4 x 4 patch features of width 48" in info and "attention" in info
    step = 192 + 4
    pca = image[:, step:2 * step - 4] if kind == "image" else image[step:2 * step - 4]
    attention = image[:, 2 * step:] if kind == "image" else image[2 * step:]
    assert pca.std() > 0 and attention.std() > 0  # neither map is flat


def test_probe_endpoint(client: gradio_client.Client, media: dict[str, Path], digits: dict) -> None:
    label, info = client.predict(gradio_client.handle_file(str(media["video"])), api_name="/probe")
    confidences = label["confidences"]
    assert len(confidences) == 5 and label["label"] == confidences[0]["label"]
    assert {c["label"] for c in confidences} <= DIGIT_LABELS
    # the probabilities of the saved classifier run in-process on the same frames: each shown label's, and the five
    # largest (labels of near-equal probabilities may trade places)
    from transformers import AutoModelForVideoClassification

    from hf_jepa.space.probe import probe_record

    model = AutoModelForVideoClassification.from_pretrained(digits["probe"]).eval()
    step = probe_record(str(digits["probe"])).frame_step  # the tab samples uploads as the probe's clips
    assert step is not None
    frames, _ = space.read_media(str(media["video"]), space.SpaceConfig(), num_frames=model.config.num_frames,
                                 frame_step=step)
    expected = space.classify(model, frames, top_k=model.config.num_labels)  # {label: probability}, all labels
    shown = {c["label"]: c["confidence"] for c in confidences}
    np.testing.assert_allclose(list(shown.values()), [expected[k] for k in shown], atol=1e-5)
    np.testing.assert_allclose(list(shown.values()), sorted(expected.values(), reverse=True)[:5], atol=1e-5)
    assert "VideoJepaForVideoClassification" in info


def test_probe_endpoint_on_a_builtin_clip(client: gradio_client.Client, digits: dict, tmp_path: Path) -> None:
    """A built-in test clip (the tabs' examples) through /probe: the scores of the demo-style probe on that clip."""
    (clip, label), *_ = space.example_clips(3, tmp_path)
    result, _ = client.predict(gradio_client.handle_file(clip), api_name="/probe")
    from hf_jepa.space.probe import probe_record

    model = space.load_model(str(digits["probe"]), "probe")
    frames, kind = space.read_media(clip, space.SpaceConfig(), num_frames=model.config.num_frames,
                                    frame_step=probe_record(str(digits["probe"])).frame_step)
    expected = space.classify(model, frames)
    assert kind == "video" and len(result["confidences"]) == 5
    assert {c["label"]: round(c["confidence"], 5) for c in result["confidences"]} == {
        k: round(v, 5) for k, v in expected.items()}
    assert set(expected) <= DIGIT_LABELS


def test_space_defaults_are_the_demo_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the HF_JEPA_* variables the Features / Probe tabs use make demo's Two-Rooms encoder and its heading
    probe, Plan its Two-Rooms world model; the variables override each."""
    for name in (space.ENV_ENCODER, space.ENV_PROBE, space.ENV_WORLD_MODEL):
        monkeypatch.delenv(name, raising=False)
    config = space.SpaceConfig.from_env()
    assert Path(config.encoder).parts[-4:] == ("outputs", "demo", "pretrain", "encoder")
    assert Path(config.probe_model).parts[-4:] == ("outputs", "demo", "probe", "classifier")
    assert Path(config.world_model).parts[-3:] == ("outputs", "demo", "world_model")
    monkeypatch.setenv(space.ENV_ENCODER, "org/encoder")
    monkeypatch.setenv(space.ENV_PROBE, "org/probe")
    monkeypatch.setenv(space.ENV_WORLD_MODEL, "org/world-model")
    config = space.SpaceConfig.from_env()
    assert (config.encoder, config.probe_model, config.world_model) == ("org/encoder", "org/probe", "org/world-model")


def _status_texts(app_url: str) -> dict[str, str]:
    """The Markdown of the tabs' status lines, as the app serves it (/config)."""
    import httpx

    components = httpx.get(f"{app_url}config", timeout=30).json()["components"]
    return {c["props"]["elem_id"]: c["props"]["value"] for c in components
            if c.get("props", {}).get("elem_id") in ("features-status", "probe-status")}


def test_tabs_say_what_the_models_were_trained_on(app_url: str, digits: dict) -> None:
    """The Features and Probe tabs name the training data, steps and probe accuracy the scripts recorded."""
    from hf_jepa.pretraining import PretrainArguments

    objective = PretrainArguments(model_type="vjepa2", preset="tiny").objective  # pretrain.py's default recipe
    encoder_text = f"V-JEPA 2 tiny ({', '.join(f'{k}={v}' for k, v in ENCODER.items() if k != 'num_mask_tokens')})"
    pretrained = f"{encoder_text}, pretrained {STEPS} steps on `{digits['data']}` (objective {objective})"
    top1 = 100 * digits["results"]["top1"]
    texts = _status_texts(app_url)
    assert f"Trained: {pretrained}." in texts["features-status"]
    assert (f"Trained: attentive probe on `digit` of `{digits['data']}`, top-1 {top1:.1f}% on its test split "
            f"(8 samples); its frozen encoder: {pretrained}.") in texts["probe-status"]
    assert space.describe_model(str(digits["encoder"]), "encoder") in texts["features-status"]


def test_describe_model_reads_hub_repos_and_says_nothing_without_a_record(
        digits: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    for repo, folder in (("org/digits-encoder", digits["encoder"]), ("org/digits-probe", digits["probe"])):
        hub_cache_snapshot(tmp_path / "hub", repo, folder)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_files.clear_hub_cache()
    try:
        for repo, folder, what in (("org/digits-encoder", digits["encoder"], "encoder"),
                                   ("org/digits-probe", digits["probe"], "probe")):
            text = space.describe_model(repo, what)
            assert text.startswith("Trained: ") and text == space.describe_model(str(folder), what)
    finally:
        hub_files.clear_hub_cache()
    plain = tmp_path / "plain"  # a model folder without a card
    shutil.copytree(digits["encoder"], plain)
    (plain / "README.md").unlink()
    assert space.describe_model(str(plain), "encoder") == ""
    assert space.describe_model(str(tmp_path / "missing"), "encoder") == ""


def test_example_clips_are_builtin_test_clips(tmp_path: Path) -> None:
    clips = space.example_clips(3, tmp_path)
    assert len(clips) == 3 and space.example_clips(0, tmp_path) == []
    for path, label in clips:
        match = re.fullmatch(r"digit (\d) moving ([a-z-]+)", label)
        assert match and match.group(2) in space.DIRECTION_NAMES, label
        assert Path(path).parent == tmp_path and f"digit{match.group(1)}-{match.group(2)}" in Path(path).name
        frames, kind = space.read_media(path, space.SpaceConfig())
        assert kind == "video" and frames.shape == (16, 3, 64, 64) and frames.float().std() > 0
    mtimes = [Path(p).stat().st_mtime_ns for p, _ in clips]
    assert space.example_clips(3, tmp_path) == clips  # the second call reuses the files
    assert [Path(p).stat().st_mtime_ns for p, _ in clips] == mtimes


def test_probe_tab_states_training_accuracy_and_baselines(client: gradio_client.Client, digits: dict,
                                                         tmp_path: Path) -> None:
    """Beside a prediction the tab states what the probe was trained on and its test top-1 against chance, read from
    the probe's results.json; on an example clip (the probe's first test clips) also its true label."""
    from hf_jepa.space.probe import probe_examples, probe_record

    record = probe_record(str(digits["probe"]))
    assert record.top1 == digits["results"]["top1"] and record.chance["uniform"] == 1 / 10
    (path, label), *_ = probe_examples(record, 2, tmp_path)
    truth = label.removeprefix("digit: ")
    result, info = client.predict(gradio_client.handle_file(path), api_name="/probe")
    assert f"true `digit` is **{truth}**: " + ("right." if result["label"] == truth else "wrong.") in info
    assert record.summary() in info and f"top-1 **{record.top1:.1%}**" in info and "chance 10.0%" in info


def test_plan_endpoint(client: gradio_client.Client) -> None:
    gif, goal, plot, summary = client.predict(0.25, 0.7, 0.75, 0.7, 3, 16, 2, 2, 0, api_name="/plan")
    with Image.open(gif) as anim:
        assert anim.format == "GIF" and anim.n_frames >= 2 and anim.size == (320, 320)
    assert Image.open(goal).size == (320, 320)
    assert plot is not None
    assert "in 3 steps" in summary and "Final distance" in summary and "Aimed at the goal image." in summary


def test_invalid_inputs_give_clear_errors(client: gradio_client.Client, media: dict[str, Path]) -> None:
    # gradio checks file_types first ("Invalid file type ..."); read_media repeats the check for other callers
    with pytest.raises(Exception, match="(Invalid|Unsupported) file type"):
        client.predict(gradio_client.handle_file(str(media["text"])), api_name="/features")
    with pytest.raises(Exception, match="inside a wall"):
        client.predict(0.5, 0.8, 0.75, 0.7, 3, 16, 2, 2, 0, api_name="/plan")


def test_missing_models_explain_make_demo(tmp_path: Path) -> None:
    config = space.SpaceConfig(encoder=str(tmp_path / "none"), probe_model=str(tmp_path / "none"),
                               world_model=str(tmp_path / "none"))
    ok, message = space.model_status(config.world_model, "world model")
    assert not ok and "make demo" in message
    with pytest.raises(space.ModelUnavailable, match="make demo"):
        space.load_model(config.encoder, "encoder")
    ui.build_demo(config)  # builds without models


@pytest.mark.timeout(BROWSER_TIMEOUT_S)
def test_browser_plan_click_and_invalid_upload(app_url: str, media: dict[str, Path], digits: dict,
                                               tmp_path: Path) -> None:
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

        # click-to-place: a click on the right room moves the goal there
        page.get_by_label("Goal", exact=True).check()
        page.locator("#arena img").click(position={"x": 260, "y": 260})
        goal_x = page.get_by_label("number input for goal x")
        page.wait_for_function("el => Math.abs(parseFloat(el.value) - 0.814) < 0.01", arg=goal_x.element_handle(),
                               timeout=15_000)

        page.get_by_role("button", name="Plan ▶").click()
        summary = page.locator("#plan-summary")
        summary.get_by_text("Final distance").wait_for(timeout=120_000)
        page.locator("#trajectory img").wait_for(timeout=30_000)
        page.locator("#energy").locator("img, svg, canvas").first.wait_for(timeout=30_000)
        target = ROOT / "docs" / "space.png" if os.environ.get("HF_JEPA_SAVE_SCREENSHOT") == "1" else (
            tmp_path / "space.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 10_000

        # the Probe tab says what its probe was trained on; an example clip (its first test clip) classifies, and the
        # answer comes with the clip's true label, the probe's test top-1 and chance
        from hf_jepa.space.probe import probe_examples, probe_record

        page.get_by_role("tab", name="Probe").click()
        page.locator("#probe-status").get_by_text("attentive probe on").wait_for(timeout=15_000)
        record = probe_record(str(digits["probe"]))
        (_, label), *_ = probe_examples(record, 1, tmp_path / "examples")
        page.locator("#probe-examples").get_by_text(label, exact=True).first.click()
        page.locator("#probe-in").get_by_text(".mp4").wait_for(timeout=15_000)  # the example is in the input
        page.get_by_role("button", name="Classify").click()
        page.locator("#probe-out").get_by_text("%").first.wait_for(timeout=60_000)
        info = page.locator("#probe-info")
        info.get_by_text("true digit is").wait_for(timeout=60_000)
        text = info.inner_text()
        assert f"true digit is {label.removeprefix('digit: ')}" in text and f"top-1 {record.top1:.1%}" in text
        assert "chance 10.0%" in text, text

        # an invalid upload is refused with a visible error, not a stack trace
        page.get_by_role("tab", name="Features").click()
        page.locator("#features-in input[type=file]").set_input_files(str(media["text"]))
        page.get_by_role("button", name="Show features").click()
        error = page.locator(".toast-body").first
        error.wait_for(timeout=30_000)
        text = error.inner_text()
        assert "file type" in text.lower() and "Traceback" not in text
        browser.close()


@pytest.mark.timeout(BROWSER_TIMEOUT_S)
def test_browser_busy_planner_is_a_notice_with_the_place_in_the_queue(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With one plan running, a click on Plan says the plan's place in the planner's queue and the expected wait (an
    info notice); with one more waiting (max_waiting_plans=1) the next click is refused by a "Planner busy" warning,
    not by a validation error on a slider; API clients get the same refusal as a ValidationError."""
    import threading

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium to run the browser test")
    playwright = pytest.importorskip("playwright.sync_api")
    release = threading.Event()
    release.set()
    real_plan = ui.plan_in_two_rooms

    def held_plan(*args, **kwargs):  # a plan that runs once the test releases it
        assert release.wait(timeout=120)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(ui, "plan_in_two_rooms", held_plan)
    config = space.SpaceConfig(encoder=str(tmp_path / "none"), probe_model=str(tmp_path / "none"),
                               world_model=_tiny_world_model(tmp_path), examples=0, num_samples=16, iterations=2,
                               horizon=2, max_steps=3, max_waiting_plans=1)
    launched = launch_space(config)
    url = next(launched)
    try:
        client = gradio_client.Client(url, verbose=False)
        plan_args = (0.25, 0.7, 0.3, 0.7, 2, 16, 2, 2, 0)
        client.predict(*plan_args, api_name="/plan")  # one plan done: its duration makes the expected wait
        release.clear()
        running = client.submit(*plan_args, api_name="/plan")
        for _ in range(600):  # until the held plan runs
            if running.status().code == gradio_client.utils.Status.PROCESSING:
                break
            threading.Event().wait(0.1)
        args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.goto(url)
            plan = page.get_by_role("button", name="Plan ▶")
            plan.wait_for(timeout=60_000)
            plan.click()  # one plan runs: this one waits, first in the planner's queue
            queued = page.locator(".toast-body").filter(has_text="Your plan is number 1 in the planner's queue")
            queued.wait_for(timeout=30_000)
            assert re.search(r"it starts in about \d+ (s|min)", queued.inner_text())
            page.wait_for_timeout(1000)  # the browser's plan has joined the queue
            plan.click()  # one waits: refused with a notice
            busy = page.locator(".toast-body").filter(has_text=ui.BUSY)
            busy.wait_for(timeout=30_000)
            text = busy.inner_text()
            assert "1 plan is already waiting (at most 1)" in text and "Try again in a minute" in text, text
            notices = "\n".join(page.locator("[class*=toast]").all_inner_texts())
            assert re.search(r"Warning\W*The planner is busy", notices), notices  # a warning notice of its own
            assert page.get_by_text("failed validation").count() == 0  # no form error on a slider
            with pytest.raises(gradio_client.exceptions.ValidationError, match=ui.BUSY):
                client.predict(*plan_args, api_name="/plan")  # API clients: the endpoint's validator
            release.set()
            page.locator("#plan-summary").get_by_text("Final distance").wait_for(timeout=120_000)
            browser.close()
        running.result(timeout=120)
    finally:
        release.set()
        launched.close()


def test_read_media_samples_the_clip_a_probe_saw(tmp_path: Path) -> None:
    """With the probe's frame_step, an upload is read as the probe's eval clips are (the centred clip, frames
    frame_step apart); without it, frames spread over the whole video; a video too short for the span gets the
    largest step that fits. Each frame of the test video is a flat grey level 6 x its index."""
    from torchcodec.encoders import VideoEncoder

    from hf_jepa.data.video import sample_clip_indices
    from hf_jepa.space.media import clip_indices
    from hf_jepa.space.probe import ProbeRecord

    levels = torch.arange(40, dtype=torch.uint8) * 6  # (40,)
    video = levels[:, None, None, None].expand(40, 3, 32, 32).contiguous()  # (40, 3, 32, 32) uint8
    path = tmp_path / "ramp.mp4"
    VideoEncoder(video, frame_rate=8).to_file(str(path))

    def read(**kwargs) -> list[int]:
        frames, kind = space.read_media(str(path), space.SpaceConfig(), num_frames=8, **kwargs)
        assert kind == "video" and frames.shape == (8, 3, 32, 32)
        return (frames.float().mean((1, 2, 3)) / 6).round().int().tolist()

    assert read(frame_step=2) == sample_clip_indices(40, 8, 2, generator=None) == list(range(12, 27, 2))
    assert read() == np.linspace(0, 39, 8).round().astype(int).tolist()
    assert read(frame_step=10) == clip_indices(40, 8, 10) == list(range(2, 38, 5))  # span 71 > 40: step 5
    assert clip_indices(5, 8, 2) == [0, 1, 2, 3, 4]  # shorter than the clip: every frame (read_media repeats)
    record = ProbeRecord.from_results({"label_column": "digit", "dataset": "d", "top1": 0.5,
                                       "settings": {"frame_step": 3}})
    assert record.frame_step == 3


def test_read_media_rejects_bad_inputs(media: dict[str, Path], tmp_path: Path) -> None:
    config = space.SpaceConfig(max_upload_mb=0.001, max_video_seconds=0.5)
    with pytest.raises(space.InputError, match="Unsupported file type `.txt`"):
        space.read_media(media["text"], config)
    with pytest.raises(space.InputError, match="Upload an image"):
        space.read_media(None, config)
    with pytest.raises(space.InputError, match="limit is 0.001 MB"):
        space.read_media(media["video"], config)
    with pytest.raises(space.InputError, match="limit is 0.5 s"):
        space.read_media(media["video"], space.SpaceConfig(max_video_seconds=0.5))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(space.InputError, match="`broken.png` is not an image"):
        space.read_media(broken, space.SpaceConfig())


def test_space_requirements_install_this_version_of_the_package() -> None:
    """spaces/requirements.txt installs the wheel `make space-bundle` builds: same name and version as pyproject."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    lines = [ln.strip() for ln in (root / "spaces" / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    wheel = f"./{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"
    assert wheel in lines, f"{wheel} not in {lines}"
    assert any(ln.startswith("gradio") for ln in lines)
    assert "space-bundle:" in (root / "Makefile").read_text()


def test_the_wheel_lists_every_subpackage() -> None:
    """pyproject's explicit package list (what the wheel `make space-bundle` builds holds) names every folder of the
    library and of modeling/ that holds Python files: a package left out imports here (editable install) and is
    missing from the Space."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"hf_jepa.modeling"} | {
        ".".join(("hf_jepa", *module.parent.relative_to(root / "src" / "hf_jepa").parts))
        for module in (root / "src" / "hf_jepa").rglob("*.py")}
    assert found - listed == set(), f"packages missing from pyproject's [tool.setuptools] packages: {found - listed}"
    assert listed - found == set(), f"pyproject lists packages that do not exist: {listed - found}"


def test_plan_with_subgoals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_JEPA_SUBGOAL_DATASET turns subgoals on (a dataset or a saved graph file); `plan_in_two_rooms` then asks the
    graph for every replan's target; a missing dataset is a clear error naming the variable."""
    from hf_jepa.planning import LatentSubgoalGraph, SubgoalConfig, frames_to_tensor, planner_config

    monkeypatch.setenv(space.ENV_SUBGOALS, str(tmp_path / "data"))
    assert space.SpaceConfig.from_env().subgoal_dataset == str(tmp_path / "data")
    monkeypatch.delenv(space.ENV_SUBGOALS)
    assert space.SpaceConfig.from_env().subgoal_dataset is None
    config = space.SpaceConfig(world_model=_tiny_world_model(tmp_path))
    model = space.load_model(config.world_model, "world model")
    with pytest.raises(space.ModelUnavailable, match=space.ENV_SUBGOALS):
        space.load_subgoal_graph(str(tmp_path / "no_such_data"), model)
    env = TwoRoomsEnv()
    path = [(0.25, y) for y in np.linspace(0.7, 0.35, 8)] + [(x, 0.35) for x in np.linspace(0.3, 0.75, 8)]
    with torch.no_grad():
        latents = torch.cat([model.encode(frames_to_tensor(env.render_state(np.array(p)), model)) for p in path])
    graph = LatentSubgoalGraph.from_episodes([latents], SubgoalConfig(stride=1, lookahead=2))
    assert config.subgoal_source() is None  # no graph beside the world model: plans aim at the goal
    file = graph.save(Path(config.world_model) / "subgoal_graph.safetensors")  # as train_world_model.py saves it
    assert config.subgoal_source() == str(file)
    assert dataclasses.replace(config, subgoal_dataset="none").subgoal_source() is None
    assert dataclasses.replace(config, subgoal_dataset="data").subgoal_source() == "data"
    saved = space.load_subgoal_graph(config.subgoal_source(), model)
    assert saved.config == graph.config and saved.nodes.shape == graph.nodes.shape
    asked = []
    subgoal = graph.subgoal
    monkeypatch.setattr(graph, "subgoal", lambda z, g: asked.append(1) or subgoal(z, g))
    cem = planner_config(model, "cem", horizon=2, num_samples=8, topk=2, iterations=2)
    out = space.plan_in_two_rooms(model, (0.25, 0.7), (0.75, 0.35), cem=cem, max_steps=2 * model.config.frame_skip,
                                  subgoals=graph, out_dir=tmp_path / "plan")
    assert len(asked) == 2 and Path(out.trajectory_gif).is_file()
    assert f"Aimed at subgoals on the training data's shortest path ({len(path)} frames)" in out.summary


def test_subgoal_graph_of_a_hub_world_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A world model given as a Hub id brings its subgoal_graph.safetensors when its repo has one (resolved from a
    pre-populated HF cache, offline); offline, a graph not in the cache is an error saying what to download, unless
    the cache records that the repo has none; an id that is no repo plans toward the goal."""
    from huggingface_hub import constants

    from hf_jepa.planning.subgoals import GRAPH_FILENAME, LatentSubgoalGraph, SubgoalConfig

    for repo, with_graph in (("org/with-graph", True), ("org/no-graph", False)):
        files = tmp_path / repo
        files.mkdir(parents=True)
        (files / "config.json").write_text("{}")
        if with_graph:
            LatentSubgoalGraph.from_episodes([torch.randn(4, 2, 3)], SubgoalConfig(stride=1)).save(
                files / GRAPH_FILENAME)
        hub_cache_snapshot(tmp_path / "hub", repo, files)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_files.clear_hub_cache()
    try:
        found = space.SpaceConfig(world_model="org/with-graph").subgoal_source()
        assert found is not None and Path(found).resolve().parent.name == HUB_COMMIT
        assert LatentSubgoalGraph.load(found).nodes.shape == (4, 2, 3)
        with pytest.raises(space.HubFileUnavailable, match=f"`hf download org/no-graph {GRAPH_FILENAME}`"):
            space.SpaceConfig(world_model="org/no-graph").subgoal_source()
        no_exist = tmp_path / "hub" / "models--org--no-graph" / ".no_exist" / HUB_COMMIT / GRAPH_FILENAME
        no_exist.parent.mkdir(parents=True)
        no_exist.touch()  # what an online look-up that found no graph leaves in the cache
        assert space.SpaceConfig(world_model="org/no-graph").subgoal_source() is None
        assert space.SpaceConfig(world_model=str(tmp_path / "not" / "a" / "repo")).subgoal_source() is None
    finally:
        hub_files.clear_hub_cache()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with a few bytes of image data (it would not decode)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def hostile(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from torchcodec.encoders import VideoEncoder

    root = tmp_path_factory.mktemp("hostile")
    png, mp4 = media["image"].read_bytes(), media["video"].read_bytes()
    contents = {"empty.png": b"", "empty.mp4": b"", "truncated.png": png[:100], "truncated.mp4": mp4[:100],
                "half.mp4": mp4[: len(mp4) // 2], "text.png": b"not an image, just text\n",
                "text.mp4": b"not a video, just text\n", "image.mp4": png, "video.png": mp4,
                "bomb.png": _png_header(20_000, 20_000),  # beyond PIL's own decompression-bomb guard
                "large.png": _png_header(5_000, 5_000)}  # within PIL's guard, beyond max_image_pixels
    files = {name: root / name for name in contents}
    for name, data in contents.items():
        files[name].write_bytes(data)
    many = torch.zeros(300, 3, 16, 16, dtype=torch.uint8)  # 300 frames at 100 fps: 3 s
    VideoEncoder(many, frame_rate=100).to_file(str(root / "many_frames.mp4"))
    VideoEncoder(torch.zeros(12, 3, 16, 16, dtype=torch.uint8), frame_rate=1).to_file(str(root / "long.mp4"))
    return {**files, "many_frames.mp4": root / "many_frames.mp4", "long.mp4": root / "long.mp4"}


# the refusal of each hostile upload (SpaceConfig(max_video_frames=100, max_video_seconds=5)): file, problem, expected
HOSTILE = {
    "empty.png": r"`empty.png` is empty \(0 bytes\): upload an image \(.png.*or a video \(.mp4",
    "empty.mp4": r"`empty.mp4` is empty \(0 bytes\): upload an image",
    "truncated.png": r"`truncated.png` could not be decoded \(OSError: image file is truncated\).*upload a complete "
                     r"PNG file",
    "truncated.mp4": r"`truncated.mp4` could not be opened as a video: it starts like a video \(MP4/MOV\) but is "
                     r"probably truncated or corrupt. Upload a video \(.mp4",
    "half.mp4": r"`half.mp4` could not be opened as a video: it starts like a video \(MP4/MOV\) but is probably "
                r"truncated",
    "text.png": r"`text.png` is not an image: its content is not PNG, JPEG, WebP, BMP or GIF data. Upload an image "
                r"\(.png",
    "text.mp4": r"`text.mp4` could not be opened as a video: it is not a video file, or it is corrupt. Upload a video",
    "image.mp4": r"`image.mp4` holds a PNG image, not a video: rename it to an image extension \(.png.*or upload a "
                 r"video",
    "video.png": r"`video.png` holds video data \(MP4/MOV\), not an image: rename it to a video extension \(.mp4.*or "
                 r"upload an image",
    "bomb.png": r"`bomb.png` is too large: its header claims 400,000,000 pixels; the limit is 16,777,216 pixels "
                r"\(e.g. 4096 x 4096\). Upload a smaller image.",
    "large.png": r"`large.png` is 5000 x 5000 = 25,000,000 pixels: the limit is 16,777,216 pixels",
    "many_frames.mp4": r"`many_frames.mp4` has 300 frames: the limit is 100 frames. Upload a shorter clip",
    "long.mp4": r"`long.mp4` is 12.0 s long: the limit is 5 s. Upload a shorter clip.",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_read_media_refuses_hostile_uploads(hostile: dict[str, Path], name: str) -> None:
    with pytest.raises(space.InputError, match=HOSTILE[name]):
        space.read_media(hostile[name], space.SpaceConfig(max_video_frames=100, max_video_seconds=5))


def test_image_size_is_checked_before_decoding(hostile: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The header's size refuses a large image before any pixel is decoded; a video frame larger than
    max_video_pixels is refused from the container's metadata; a long video decodes only the frames it needs."""
    from PIL import ImageFile
    from torchcodec import decoders

    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self) or None)
    with pytest.raises(space.InputError, match="5000 x 5000"):
        space.read_media(hostile["large.png"], space.SpaceConfig())
    assert decoded == []
    with pytest.raises(space.InputError, match=r"`many_frames.mp4` has 16 x 16 frames = 256 pixels: the limit is 255"):
        space.read_media(hostile["many_frames.mp4"], space.SpaceConfig(max_video_pixels=255))
    asked = []

    class CountingDecoder(decoders.VideoDecoder):
        def get_frames_at(self, indices: list[int]):  # noqa: ANN202
            asked.append(list(indices))
            return super().get_frames_at(indices=indices)

    monkeypatch.setattr(decoders, "VideoDecoder", CountingDecoder)
    frames, kind = space.read_media(hostile["many_frames.mp4"], space.SpaceConfig(), num_frames=4)
    assert kind == "video" and frames.shape == (4, 3, 16, 16)
    assert asked == [[0, 100, 199, 299]]


def test_hostile_uploads_through_the_space(client: gradio_client.Client, hostile: dict[str, Path],
                                           media: dict[str, Path]) -> None:
    """Each hostile upload to /features and /probe comes back as the app's message (not a crash or a stack trace);
    then the same long-lived app serves an ordinary request."""
    names = ("empty.png", "truncated.png", "truncated.mp4", "text.png", "image.mp4", "video.png", "bomb.png",
             "large.png")
    for name in names:
        for api in ("/features", "/probe"):
            with pytest.raises(gradio_client.exceptions.AppError, match=HOSTILE[name]) as caught:
                client.predict(gradio_client.handle_file(str(hostile[name])), api_name=api)
            assert "Traceback" not in str(caught.value)
    panel, info = client.predict(gradio_client.handle_file(str(media["video"])), api_name="/features")
    assert Image.open(panel).size[0] > 0 and "patch features" in info
    label, _ = client.predict(gradio_client.handle_file(str(media["video"])), api_name="/probe")
    assert len(label["confidences"]) == 5


def _http_error(status: int) -> Exception:
    from huggingface_hub.errors import HfHubHTTPError

    response = types.SimpleNamespace(status_code=status, headers={}, request=None)
    return HfHubHTTPError(f"{status} Server Error: Service Unavailable for url: https://huggingface.co/org/wm",
                          response=response)


class _FakeDownload:
    """hf_hub_download stand-in: raises the queued errors one per call, then returns `path`."""

    def __init__(self, errors: list[Exception], path: Path) -> None:
        self.errors, self.path, self.calls = list(errors), path, 0

    def __call__(self, repo_id: str, filename: str) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return str(self.path)


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """hub_files with a monkeypatched hf_hub_download and an empty memory of files."""
    hub_files.clear_hub_cache()
    file = tmp_path / "subgoal_graph.safetensors"
    file.write_bytes(b"graph")

    def install(errors: list[Exception]) -> _FakeDownload:
        fake = _FakeDownload(errors, file)
        monkeypatch.setattr(hub_files, "hf_hub_download", fake)
        return fake

    yield {"install": install, "file": file}
    hub_files.clear_hub_cache()


def test_hub_file_reports_a_transient_error_at_once_then_remembers_the_file(fake_hub: dict,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    """One hf_hub_download per request (it retries transient errors itself): its error is reported in our words,
    not remembered; the next request downloads, and the file is then remembered."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    wrapped = LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub")
    wrapped.__cause__ = _http_error(503)  # what hf_hub_download raises when the Hub still answers 503
    for error, reason in ((wrapped, "HfHubHTTPError: 503 Server Error"),
                          (ConnectionError("Connection reset by peer"), "ConnectionError: Connection reset by peer")):
        hub_files.clear_hub_cache()
        fake = fake_hub["install"]([error])
        config = space.SpaceConfig(world_model="org/wm")
        with pytest.raises(space.HubFileUnavailable) as caught:
            config.subgoal_source()
        message = str(caught.value)
        assert (f"Could not fetch `subgoal_graph.safetensors` from the Hub repo `org/wm` ({reason}"
                in message and "the next request tries again" in message)
        assert fake.calls == 1 and message in caplog.text  # no retries of ours; logged as a warning too
        assert config.subgoal_source() == str(fake_hub["file"]) and fake.calls == 2  # not remembered: asked again
        assert config.subgoal_source() == str(fake_hub["file"]) and fake.calls == 2  # found: remembered
    fake = fake_hub["install"]([_http_error(403)])  # not transient: reported at once, not remembered
    with pytest.raises(space.HubFileUnavailable, match="`README.md` from the Hub repo `org/wm` .*HfHubHTTPError: 403"):
        hub_files.hub_file("org/wm", "README.md")
    assert fake.calls == 1 and hub_files.hub_file("org/wm", "README.md") == fake_hub["file"]


def test_hub_file_leaves_retries_to_huggingface_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a local HTTP "Hub": hf_hub_download itself retries 503s with its backoff (a Space request is not
    retried again on top); a Hub that stays down is one HubFileUnavailable after the library's retries. Fails the
    day huggingface_hub stops retrying, which would make hub_file give up at the first 503."""
    import http.server
    import threading

    import huggingface_hub.utils._http as hf_http
    from huggingface_hub import constants

    body, seen = b"graph", []

    class Hub(http.server.BaseHTTPRequestHandler):
        failures = 2

        def _answer(self, with_body: bool) -> None:
            if "/resolve/" not in self.path:  # anything else the client asks: not found
                self.send_response(404), self.send_header("Content-Length", "0"), self.end_headers()
                return
            seen.append(self.command)
            if Hub.failures > 0:
                Hub.failures -= 1
                self.send_response(503), self.send_header("Content-Length", "0"), self.end_headers()
                return
            self.send_response(200)
            for key, value in (("Content-Length", str(len(body))), ("ETag", '"e1"'), ("X-Repo-Commit", "0" * 40)):
                self.send_header(key, value)
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(True)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    waits: list[float] = []
    monkeypatch.setattr(hf_http.time, "sleep", waits.append)  # the library's backoff, recorded instead of slept
    for name, value in (("ENDPOINT", endpoint), ("HUGGINGFACE_CO_URL_TEMPLATE",
                                                  endpoint + "/{repo_id}/resolve/{revision}/{filename}"),
                        ("HF_HUB_CACHE", str(tmp_path / "hub")), ("HF_HUB_OFFLINE", False),
                        ("HF_HUB_DISABLE_XET", True)):
        monkeypatch.setattr(constants, name, value)
    hub_files.clear_hub_cache()
    try:
        path = hub_files.hub_file("org/wm", "subgoal_graph.safetensors")
        assert path is not None and path.read_bytes() == body
        assert seen.count("HEAD") == 3 and waits  # two 503s, retried inside hf_hub_download with a backoff
        Hub.failures, seen[:], waits[:] = 1000, [], []
        with pytest.raises(space.HubFileUnavailable, match="`other.bin` from the Hub repo `org/wm` .*503"):
            hub_files.hub_file("org/wm", "other.bin")
        assert len(seen) >= 4 and len(waits) >= 3  # the library's retries, then our one message
    finally:
        server.shutdown()
        hub_files.clear_hub_cache()


def test_hub_file_remembers_a_file_the_repo_lacks(fake_hub: dict) -> None:
    from huggingface_hub.errors import EntryNotFoundError

    fake = fake_hub["install"]([EntryNotFoundError("404 Entry Not Found"), EntryNotFoundError("404")])
    config = space.SpaceConfig(world_model="org/wm")
    assert config.subgoal_source() is None and config.subgoal_source() is None
    assert fake.calls == 1
    fake_hub["install"]([ConnectionError("down")] * 5)
    assert space.describe_model("org/wm", "world model") == ""  # a card that cannot be fetched now: no sentence


def test_hub_file_offline_says_what_to_download(fake_hub: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = LocalEntryNotFoundError("Cannot find the requested files in the disk cache and outgoing traffic has "
                                      "been disabled.")
    fake = fake_hub["install"]([offline, offline])
    config = space.SpaceConfig(world_model="org/wm")
    for calls in (1, 2):  # no retries offline, and not remembered (the file may be downloaded meanwhile)
        with pytest.raises(space.HubFileUnavailable) as caught:
            config.subgoal_source()
        assert fake.calls == calls
    assert ("`subgoal_graph.safetensors` of the Hub repo `org/wm` is not in the Hugging Face cache" in str(caught.value)
            and "`hf download org/wm subgoal_graph.safetensors`" in str(caught.value)
            and "unset HF_HUB_OFFLINE" in str(caught.value))
    assert config.subgoal_source() == str(fake_hub["file"])


def test_plan_without_a_fetchable_subgoal_graph(client: gradio_client.Client,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A subgoal graph the Hub cannot give now: the plan aims at the goal and says why."""
    def unavailable(self: space.SpaceConfig) -> str | None:
        raise space.HubFileUnavailable("Could not fetch `subgoal_graph.safetensors` from the Hub repo `org/wm` "
                                       "(HfHubHTTPError: 503). It is not remembered: the next request tries again.")

    monkeypatch.setattr(space.SpaceConfig, "subgoal_source", unavailable)
    *_, summary = client.predict(0.25, 0.7, 0.75, 0.7, 3, 16, 2, 2, 0, api_name="/plan")
    assert "Aimed at the goal image. No subgoals this time: Could not fetch `subgoal_graph.safetensors`" in summary
