"""The demo's probe and the Space's Probe tab: labelled clips cut from Two-Rooms trajectories (heading, room), the
probe's results file read back by the tab (what it was trained on, top-1 against chance and the baselines), the tab's
example clips (the probe's first test clips, with their true labels) and its answers on them, equal to the probing
pipeline's. The slow test runs the demo's own stages and checks the tab answers at least 8 of its 10 examples right."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script

import hf_jepa
from hf_jepa.data.trajectory_clips import HEADING_NAMES, heading_of, write_trajectory_clips

ROOT = Path(__file__).resolve().parents[1]




def test_heading_of_screen_directions() -> None:
    # screen coordinates: y grows downwards, so "up" is a negative dy
    moves = np.array([[1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1]], dtype=np.float32)
    sectors, margins = heading_of(moves)
    assert sectors.tolist() == list(range(8)) and HEADING_NAMES[2] == "up" and HEADING_NAMES[6] == "down"
    np.testing.assert_allclose(margins, 22.5, atol=1e-4)  # straight along each direction
    angle = np.radians(20.0)  # 20 deg above "right": still right, 2.5 deg from the border with up-right
    sector, margin = heading_of(np.array([[np.cos(angle), -np.sin(angle)]]))
    assert sector.tolist() == [0] and margin[0] == pytest.approx(2.5, abs=1e-4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small Two-Rooms collections (train, held-out) and the labelled clips cut from them."""
    root = tmp_path_factory.mktemp("clips")
    collect = load_script("collect_trajectories")
    for name, seed, episodes in (("train", 0, 12), ("test", 100_000, 6)):
        collect.main(["--env", "two_rooms", "--episodes", str(episodes), "--steps_per_episode", "40",
                      "--output_dir", str(root / name), "--seed", str(seed)])
    counts = load_script("trajectory_clips").main(["--train", str(root / "train"), "--test", str(root / "test"),
                                               "--output_dir", str(root / "clips"), "--frames_per_clip", "4",
                                               "--clips_per_episode", "4", "--min_displacement", "0.03"])
    return {"train": root / "train", "test": root / "test", "clips": root / "clips", "counts": counts}


def test_trajectory_clips_labels_come_from_the_states(clips: dict) -> None:
    import datasets
    from torchcodec.decoders import VideoDecoder

    from hf_jepa.data.lerobot import LeRobotTrajectoryDataset

    data = datasets.load_dataset(str(clips["clips"]))
    assert {s: len(data[s]) for s in ("train", "test")} == clips["counts"] and min(clips["counts"].values()) > 0
    assert data["test"].features["heading"].names == list(HEADING_NAMES)
    generation = json.loads((clips["clips"] / "generation.json").read_text())
    assert generation["frames_per_clip"] == 4 and generation["angle_margin"] == 7.5
    for split in ("train", "test"):
        reader = LeRobotTrajectoryDataset(clips[split], frames_per_window=4, frame_skip=2, shuffle=False)
        windows = {(w["episode_index"], int(w["frame_index"][0])): w for w in reader}
        raw = data[split].cast_column("video", datasets.Video(decode=False))
        for row in raw.select(range(min(6, len(raw)))):
            window = windows[(row["episode_index"], row["frame_index"])]
            move = (window["states"][-1] - window["states"][0]).numpy()
            sector, margin = heading_of(move[None])
            assert row["heading"] == sector[0] and margin[0] >= 7.5 and np.linalg.norm(move) >= 0.03
            assert row["room"] == int(window["states"][-1, 0] >= 0.5)
            assert row["displacement"] == pytest.approx(float(np.linalg.norm(move)), rel=1e-5)
            frames = VideoDecoder(row["video"]["bytes"]).get_frames_in_range(0, 4).data  # (4, 3, H, W) uint8
            assert frames.shape == (4, 3, 64, 64)  # the clip's 4 frames, every 2nd env step (lossy mp4)
            assert (frames.float() - window["frames"][:, :3].float()).abs().mean() < 6
    with pytest.raises(FileExistsError, match="expected a new folder"):
        write_trajectory_clips({"train": clips["train"]}, clips["clips"])
    with pytest.raises(ValueError, match=r"angle_margin=30: expected degrees in \[0, 22.5\)"):
        write_trajectory_clips({"train": clips["train"]}, clips["clips"].parent / "new", angle_margin=30)


@pytest.fixture(scope="module")
def probe(clips: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """scripts/probe.py on the clips with a tiny random-init V-JEPA 2 encoder folder, with both baselines."""
    root = tmp_path_factory.mktemp("probe")
    config = hf_jepa.VideoJepaConfig.from_preset("tiny", patch_size=16, num_frames=4, num_hidden_layers=2)
    torch.manual_seed(0)
    hf_jepa.VideoJepaModel(config).save_pretrained(root / "encoder")
    results = load_script("probe").main([
        "--model", str(root / "encoder"), "--dataset_name", str(clips["clips"]), "--label_column", "heading",
        "--frame_step", "1", "--epochs", "3", "--batch_size", "8", "--baselines", "random", "pixels",
        "--output_dir", str(root / "probe")])
    return {"results": results, "classifier": root / "probe" / "classifier", "clips": clips["clips"]}


def test_probe_record_is_read_from_the_results_file(probe: dict, tmp_path: Path) -> None:
    import shutil

    from hf_jepa.space.probe import probe_record

    r = probe["results"]
    record = probe_record(str(probe["classifier"]))
    assert (record.label_column, record.dataset, record.top1) == ("heading", str(probe["clips"]), r["top1"])
    assert set(record.baselines) == {"random", "pixels"}
    text = record.summary()
    for number in (r["top1"], r["chance"]["uniform"], r["chance"]["majority"], *record.baselines.values()):
        assert f"{number:.1%}" in text, (number, text)
    assert f"trained on `heading` of `{probe['clips']}` ({r['counts']['train']} train samples)" in text
    assert "random-init encoder" in text and "raw pixels" in text
    edited = tmp_path / "classifier"  # the tab shows what the file says, nothing typed in
    shutil.copytree(probe["classifier"], edited)
    changed = json.loads((edited / "results.json").read_text())
    changed["top1"], changed["baselines"]["pixels"]["top1"] = 0.4321, 0.1234
    (edited / "results.json").write_text(json.dumps(changed))
    assert "**43.2%**" in probe_record(str(edited)).summary() and "raw pixels 12.3%" in probe_record(
        str(edited)).summary()
    (edited / "results.json").unlink()
    assert probe_record(str(edited)) is None


def test_tab_examples_are_the_test_split_and_answer_as_the_probe(probe: dict, tmp_path: Path) -> None:
    """The examples are the first test clips with their true labels; the tab's path (read_media + classify) answers
    on them what the saved classifier answers on the probing pipeline's own eval clips."""
    import datasets
    from transformers import AutoModelForVideoClassification

    from hf_jepa.data import VideoClipConfig, dataloader, load_video_dataset
    from hf_jepa.processing import VIDEO_EVAL_CROP_FRACTION
    from hf_jepa.space.probe import example_truth, examples_right, probe_examples, probe_record

    record = probe_record(str(probe["classifier"]))
    test = datasets.load_dataset(str(probe["clips"]), split="test")
    count = min(6, len(test))
    examples = probe_examples(record, count, tmp_path)
    truths = [HEADING_NAMES[h] for h in test["heading"][:count]]
    assert [label for _, label in examples] == [f"heading: {t}" for t in truths]
    assert [example_truth(path) for path, _ in examples] == truths
    assert example_truth("/tmp/gradio/abc/probe-example-03-up-left.mp4") == "up-left"
    assert example_truth("my_clip.mp4") is None

    answers = examples_right(str(probe["classifier"]), count, tmp_path / "again")
    model = AutoModelForVideoClassification.from_pretrained(probe["classifier"]).eval()
    cfg = model.config
    clip = VideoClipConfig(frames_per_clip=cfg.num_frames, frame_step=1, crop_size=cfg.image_size,
                           mean=tuple(cfg.image_mean), std=tuple(cfg.image_std), train=False, horizontal_flip=False,
                           eval_crop_fraction=VIDEO_EVAL_CROP_FRACTION, label_columns=("heading",))
    batch = next(iter(dataloader(load_video_dataset(str(probe["clips"]), "test", clip_config=clip, shuffle_buffer=0),
                                 batch_size=count)))
    with torch.no_grad():
        expected = model(pixel_values_videos=batch["pixel_values_videos"]).logits.argmax(-1)  # (count,)
    assert [guess for _, _, guess in answers] == [cfg.id2label[int(i)] for i in expected]
    assert [truth for _, truth, _ in answers] == truths


@pytest.mark.slow
def test_demo_probe_answers_its_examples_right(tmp_path: Path) -> None:
    """The demo's stages 1, 2, 5 and 6 at the demo's sizes (Two-Rooms data, its V-JEPA 2 encoder, held-out clips, the
    heading probe): the Space's Probe tab answers at least 8 of its 10 example clips right, and the probe's test
    top-1 beats chance by far."""
    import subprocess

    from hf_jepa.space.probe import examples_right

    out = tmp_path / "demo"
    run = [sys.executable]
    for cmd in (
        ["scripts/collect_trajectories.py", "--env", "two_rooms", "--episodes", "300", "--output_dir",
         str(out / "two_rooms"), "--seed", "0"],
        ["scripts/pretrain.py", "--model_type", "vjepa2", "--preset", "tiny", "--dataset_name", str(out / "two_rooms"),
         "--objective", "meta", "--ema_start", "0.996", "--ema_end", "1.0", "--config_overrides", '{"patch_size": 16}',
         "--output_dir", str(out / "pretrain"), "--max_steps", "300", "--frame_step", "2", "--warmup_steps", "30",
         "--checkpointing_steps", "300", "--log_every", "25", "--seed", "0"],
        ["scripts/collect_trajectories.py", "--env", "two_rooms", "--episodes", "60", "--output_dir",
         str(out / "two_rooms_heldout"), "--seed", "100000"],
        ["scripts/trajectory_clips.py", "--train", str(out / "two_rooms"), "--test", str(out / "two_rooms_heldout"),
         "--output_dir", str(out / "probe_clips")],
        ["scripts/probe.py", "--model", str(out / "pretrain" / "encoder"), "--dataset_name", str(out / "probe_clips"),
         "--label_column", "heading", "--frame_step", "1", "--epochs", "30", "--lr", "3e-3", "--output_dir",
         str(out / "probe"), "--seed", "0"],
    ):
        subprocess.run([*run, *cmd], check=True, cwd=ROOT, timeout=1800)
    results = json.loads((out / "probe" / "results.json").read_text())
    assert results["top1"] >= 3 * results["chance"]["majority"]
    answers = examples_right(str(out / "probe" / "classifier"), 10, tmp_path / "examples")
    right = sum(truth == guess for _, truth, guess in answers)
    assert len(answers) == 10 and right >= 8, answers
