"""Script-level tests of scripts/pretrain.py: the loss falls, exact resume, two CPU processes, skipped samples,
the collapse monitors and the online probe.

Runs go through the script's `main(argv)` in this process (the two-process run goes through `accelerate launch`),
with the tiny presets shrunk further by `--config_overrides` so the file stays fast on a 2-core CPU.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import datasets
import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForPreTraining

import hf_jepa
import hf_jepa.pretraining as pretraining_mod
import hf_jepa.pretraining.setup as pretraining_setup
from hf_jepa.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from hf_jepa.pretraining import PretrainArguments, build_model_config, data_factory

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "pretrain.py"

# tiny presets shrunk further: 2 encoder blocks of width 64, 1 predictor block of width 32
_SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
          "predictor_hidden_size": 32, "predictor_num_hidden_layers": 1, "predictor_num_attention_heads": 2,
          "predictor_intermediate_size": 64}
OVERRIDES = {
    "ijepa": {"image_size": 32, "patch_size": 4, **_SMALL},  # 8x8 patch grid
    "vjepa2": {"image_size": 32, "patch_size": 8, "num_frames": 4, **_SMALL},  # 2x4x4 tubelet grid
}
METRIC_KEYS = {"step", "loss", "lr", "samples_per_second", "skipped_samples",
               "effective_rank", "constant_baseline_ratio", "target_std"}  # the last three: collapse monitors


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch: pytest.MonkeyPatch):
    # datasets sleeps 5 s after each full pass over a parquet stream (apache/arrow#45214 workaround)
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The models here are tiny: extra intra-op threads only add synchronisation (and stall badly when the two
    # cores are shared with other work).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pretrain_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flags(model_type: str, output_dir: Path, **kwargs: object) -> list[str]:
    """Script flags: shrunk preset, batch 8, warmup 5 steps (shorter than a shorter run), log every step; `kwargs`
    add or replace flags."""
    warmup = min(5, int(str(kwargs.get("max_steps", 6))) - 1)
    values: dict[str, object] = {
        "model_type": model_type, "config_overrides": json.dumps(OVERRIDES[model_type]),
        "per_device_train_batch_size": 8, "learning_rate": 3e-3, "warmup_steps": warmup, "log_every": 1,
        "checkpointing_steps": 1000, "output_dir": output_dir, **kwargs,
    }
    return [item for key, value in values.items() for item in (f"--{key}", str(value))]


def run_script(script: ModuleType, argv: list[str]) -> None:
    """`scripts/pretrain.py` main in this process, with a fresh Accelerate state."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    script.main(argv)


def read_metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def check_metrics(rows: list[dict], max_steps: int) -> None:
    assert [r["step"] for r in rows] == list(range(1, max_steps + 1))
    for row in rows:
        assert METRIC_KEYS <= row.keys(), row
        assert math.isfinite(row["loss"]) and row["lr"] > 0 and row["samples_per_second"] > 0
        assert row["effective_rank"] >= 1 and row["constant_baseline_ratio"] > 0 and row["target_std"] >= 0


def file_state(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


# ----------------------------------------------------------------------------- a. the loss falls


@pytest.mark.parametrize("objective", ["meta", "sigreg"])
@pytest.mark.parametrize("model_type", ["ijepa", "vjepa2"])
def test_loss_falls_on_builtin_data_and_outputs_load(script, tmp_path, model_type, objective) -> None:
    steps = 60
    # the digits on black: their loss falls clearly within 60 steps (on the textured default data it falls slower)
    data = {"ijepa": "builtin:moving_digit_frames", "vjepa2": "builtin:moving_digits"}[model_type]
    run_script(script, flags(model_type, tmp_path, objective=objective, max_steps=steps, dataset_name=data))

    rows = read_metrics(tmp_path)
    check_metrics(rows, steps)
    assert all(r["skipped_samples"] == 0 and r["epoch"] == 0 for r in rows)
    first = np.mean([r["loss"] for r in rows[:5]])
    last = np.mean([r["loss"] for r in rows[-5:]])
    assert last < 0.8 * first, (first, last)
    assert ("sigreg" in rows[0]) == (objective == "sigreg")

    # final/ is the pretraining model; AutoModel on it loads the encoder to evaluate (EMA target or, for
    # SIGReg, the online encoder), the same weights as encoder/
    final, encoder_dir = tmp_path / "final", tmp_path / "encoder"
    saved = file_state(final)
    encoder = AutoModel.from_pretrained(final).eval()
    standalone = AutoModel.from_pretrained(encoder_dir).eval()
    expected_cls = hf_jepa.ImageJepaModel if model_type == "ijepa" else hf_jepa.VideoJepaModel
    assert type(encoder) is expected_cls and type(standalone) is expected_cls
    source = "target_encoder." if objective == "meta" else "encoder."
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, saved[source + key]), key
        assert torch.equal(value, standalone.state_dict()[key]), key
    if objective == "meta":  # the EMA target moved away from the online encoder
        assert not torch.equal(saved["target_encoder.norm.weight"], saved["encoder.norm.weight"])
    pretraining = AutoModelForPreTraining.from_pretrained(final)
    assert (pretraining.target_encoder is None) == (objective == "sigreg")
    for key, value in pretraining.state_dict().items():
        assert torch.equal(value, saved[key]), key
    size = encoder.config.image_size
    x = torch.randn(1, 3, size, size) if model_type == "ijepa" else torch.randn(1, 4, 3, size, size)
    with torch.no_grad():
        features = encoder(x).last_hidden_state  # (1, N, 64)
    assert features.shape[-1] == 64 and torch.isfinite(features).all()
    card = (encoder_dir / "README.md").read_text()
    assert f"| objective | {objective} |" in card and f"| steps | {steps} |" in card


@pytest.mark.parametrize("arguments", ["pretrain", "world_model"])
def test_help_lists_every_flag(arguments: str, capsys) -> None:
    """`--help` prints every flag and exits 0 (a bare '%' in a help string used to crash argparse)."""
    from hf_jepa.training.runner import parse_flags
    from hf_jepa.world_model import WorldModelArguments

    dataclass_type = {"pretrain": PretrainArguments, "world_model": WorldModelArguments}[arguments]
    with pytest.raises(SystemExit) as exit_info:
        parse_flags(dataclass_type, ["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "--max_steps" in printed and "--output_dir" in printed
    if arguments == "pretrain":
        assert all(f"--{name}" in printed for name in ("probe_label_column", "probe_split", "probe_eval_samples",
                                                        "probe_lr"))


def test_seed_sets_the_initialization() -> None:
    """Same --seed: same initial weights whatever ran before in the process; another seed: other weights."""
    from accelerate import Accelerator

    def initial(seed: int) -> dict[str, torch.Tensor]:
        args = PretrainArguments(model_type="ijepa", seed=seed, config_overrides=json.dumps(OVERRIDES["ijepa"]))
        return pretraining_mod.build_pretraining(args, Accelerator(cpu=True)).model.state_dict()

    torch.manual_seed(123)
    a = initial(0)
    torch.rand(1000)
    b, c = initial(0), initial(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["encoder.blocks.0.attn.qkv.weight"], c["encoder.blocks.0.attn.qkv.weight"])


def test_ema_defaults_are_per_family_and_reach_the_schedule() -> None:
    """Unset --ema_start/--ema_end take Meta's values per family (I-JEPA ramp, V-JEPA 2 constant), stored in the
    arguments and used by the run's schedule; explicit values win; a momentum outside [0, 1] names the flag."""
    from accelerate import Accelerator

    video = PretrainArguments(model_type="vjepa2", objective="meta", max_steps=10,
                              config_overrides=json.dumps(OVERRIDES["vjepa2"]))
    image = PretrainArguments(model_type="ijepa", objective="meta", max_steps=10)
    assert (video.ema_start, video.ema_end) == (0.99925, 0.99925)
    assert (image.ema_start, image.ema_end) == (0.996, 1.0)
    schedule = pretraining_mod.build_pretraining(video, Accelerator(cpu=True)).ema_schedule
    assert schedule(0) == schedule(10) == 0.99925
    assert PretrainArguments(model_type="vjepa2", objective="meta", ema_start=0.99, ema_end=1.0).ema_start == 0.99
    with pytest.raises(ValueError, match=r"ema_end=1.5: expected a momentum in \[0, 1\]"):
        PretrainArguments(model_type="ijepa", objective="meta", ema_end=1.5)
    with pytest.raises(ValueError, match=r"\{'ema_start': 0.99\}: objective='sigreg' .* trains without an EMA"):
        PretrainArguments(model_type="vjepa2", objective="sigreg", ema_start=0.99)
    assert PretrainArguments(model_type="vjepa2", objective="sigreg").ema_start is None


def test_objective_default_is_sigreg_for_small_presets_and_meta_for_meta_sizes() -> None:
    """Small presets train on small data, where Meta's EMA objective collapses: they default to SIGReg."""
    assert PretrainArguments(model_type="ijepa", preset="tiny").objective == "sigreg"
    assert PretrainArguments(model_type="vjepa2", preset="small").objective == "sigreg"
    assert PretrainArguments(model_type="vjepa2", preset="vit_l").objective == "meta"
    assert PretrainArguments(model_type="ijepa", preset="vit_h14").ema_start == 0.996
    assert PretrainArguments(model_type="ijepa").dataset_name == "builtin:textured_digits"
    with pytest.raises(ValueError, match=r"objective='sigreg' \(the default for preset='tiny'\)"):
        PretrainArguments(model_type="ijepa", preset="tiny", ema_start=0.99)

# ----------------------------------------------------------------------------- b. exact resume


class Interrupted(RuntimeError):
    """Raised by the patched mask sampler: the run dies after its step-k checkpoint."""


@pytest.mark.parametrize(("model_type", "objective"), [("vjepa2", "meta"), ("ijepa", "sigreg")])
def test_interrupted_run_resumes_exactly(script, tmp_path, monkeypatch, model_type, objective) -> None:
    """Same flags (max_steps=6, checkpoints every 3, an online probe on the digit): straight vs. killed after the
    step-3 checkpoint and resumed.

    The schedules (warmup / decay / EMA momentum) depend on max_steps, so the resumed run keeps max_steps=6; the
    interruption is an exception raised when the 4th batch is prepared, right after the step-3 checkpoint.
    """
    max_steps, every = 6, 3
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    probe = {"probe_label_column": "digit", "probe_eval_samples": 16}
    run_script(script, flags(model_type, straight, objective=objective, max_steps=max_steps,
                             checkpointing_steps=every, **probe))

    real_sampler = pretraining_mod.mask_sampler

    def dying_sampler(*args, **kwargs):
        prepare = real_sampler(*args, **kwargs)

        def prepare_or_die(batch, step):
            if step == every:  # batch index 3: steps 1..3 are done and checkpointed
                raise Interrupted(f"killed before step {step + 1}")
            return prepare(batch, step)

        return prepare_or_die

    monkeypatch.setattr(pretraining_setup, "mask_sampler", dying_sampler)  # where build_pretraining looks it up
    with pytest.raises(Interrupted):
        run_script(script, flags(model_type, resumed, objective=objective, max_steps=max_steps,
                                 checkpointing_steps=every, **probe))
    monkeypatch.setattr(pretraining_setup, "mask_sampler", real_sampler)
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == [f"step_{every}"]
    assert not (resumed / "final").exists()
    assert [r["step"] for r in read_metrics(resumed)] == [1, 2, 3]

    run_script(script, flags(model_type, resumed, objective=objective, max_steps=max_steps,
                             checkpointing_steps=every, resume_from_checkpoint="latest", **probe))

    a, b = file_state(straight / "final"), file_state(resumed / "final")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=0, msg=key)
    # optimizer moments and scheduler position of the last checkpoints agree too
    last = f"checkpoints/step_{max_steps}"
    opt_a = torch.load(straight / last / "optimizer.bin", weights_only=False)["state"]
    opt_b = torch.load(resumed / last / "optimizer.bin", weights_only=False)["state"]
    assert opt_a.keys() == opt_b.keys()
    # second moments are ~1e-10: compared relatively (an absolute 1e-6 could not fail)
    assert any(opt_a[idx]["exp_avg_sq"].abs().max() > 0 for idx in opt_a)
    for idx in opt_a:
        torch.testing.assert_close(opt_b[idx]["exp_avg_sq"], opt_a[idx]["exp_avg_sq"], atol=1e-20, rtol=1e-4)
    sched_a = torch.load(straight / last / "scheduler.bin", weights_only=False)
    sched_b = torch.load(resumed / last / "scheduler.bin", weights_only=False)
    assert sched_a["last_epoch"] == sched_b["last_epoch"] == max_steps
    # the same run, step for step (also: the run is deterministic given its seed)
    rows_a, rows_b = read_metrics(straight), read_metrics(resumed)
    check_metrics(rows_b, max_steps)
    for x, y in zip(rows_a, rows_b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6) and x["lr"] == y["lr"], (x, y)
        assert x["online_probe_top1"] == y["online_probe_top1"], (x, y)
    # the online probe (custom_checkpoint_1: after the loop's TrainingState) continued where it stopped
    probe_a = torch.load(straight / last / "custom_checkpoint_1.pkl", weights_only=False)
    probe_b = torch.load(resumed / last / "custom_checkpoint_1.pkl", weights_only=False)
    for key, value in probe_a["head"].items():
        torch.testing.assert_close(probe_b["head"][key], value, atol=1e-6, rtol=0, msg=key)
    assert probe_a["optimizer"]["state"][0]["step"] == probe_b["optimizer"]["state"][0]["step"] == max_steps
    torch.testing.assert_close(probe_b["optimizer"]["state"][0]["exp_avg_sq"],
                               probe_a["optimizer"]["state"][0]["exp_avg_sq"], atol=1e-20, rtol=1e-4)


# ----------------------------------------------------------------------------- c. two processes


COLORS = [(30 * k + 10, 255 - 30 * k, (97 * k) % 256) for k in range(8)]  # one distinct colour per image


def write_color_images(folder: Path, *, labels: bool = False) -> Path:
    """8 uniform-colour 40x48 PNGs: a random crop / flip keeps the colour, so a sample's pixels name it; with
    `labels`, a metadata.csv gives each a `label` column (k % 2)."""
    from PIL import Image

    train = folder / "train"
    train.mkdir(parents=True)
    for k, color in enumerate(COLORS):
        Image.new("RGB", (48, 40), color).save(train / f"img{k}.png")
    if labels:
        (train / "metadata.csv").write_text("file_name,label\n" + "".join(f"img{k}.png,{k % 2}\n" for k in range(8)))
    return folder


def color_of(image: torch.Tensor) -> tuple[int, ...]:
    """Normalized (3, H, W) uniform image -> its uint8 RGB colour."""
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return tuple(int(v) for v in torch.round((image.mean((1, 2)) * std + mean) * 255))


def test_two_ranks_see_every_sample_once_per_epoch(tmp_path) -> None:
    """The script's data factory, rank 0 and rank 1 of 2: disjoint shards that cover the folder, every epoch."""
    folder = write_color_images(tmp_path / "images")
    args = PretrainArguments(model_type="ijepa", dataset_name=str(folder), per_device_train_batch_size=2,
                             config_overrides=json.dumps(OVERRIDES["ijepa"]))
    config = build_model_config(args)
    for epoch in (0, 1):
        seen = []
        for rank in (0, 1):
            loader = data_factory(args, config, rank=rank, world_size=2)(epoch)
            batches = list(loader)
            assert len(batches) == 2 and all(b["pixel_values"].shape == (2, 3, 32, 32) for b in batches)
            seen.append([color_of(x) for b in batches for x in b["pixel_values"]])
        assert not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == sorted(COLORS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_with_accelerate_launch(tmp_path) -> None:
    """`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2` (gloo) on a finite folder.

    8 images, batch 2 per process: if each rank reads its own half, an epoch is 2 steps, so steps 3 and 4 are in
    epoch 1 (a rank reading everything would still be in epoch 0). The collapse monitors reduce over both processes,
    and an online probe gathers both processes' batches and splits its 7 held-out samples 4 + 3 between them.
    """
    folder = write_color_images(tmp_path / "images", labels=True)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(SCRIPT),
               *flags("ijepa", out, dataset_name=folder, per_device_train_batch_size=2, max_steps=4,
                      checkpointing_steps=2, probe_label_column="label", probe_split="train", probe_eval_samples=7)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    rows = read_metrics(out)
    check_metrics(rows, 4)
    assert [r["epoch"] for r in rows] == [0, 0, 1, 1]
    assert all(r["effective_rank_rows"] == 4 for r in rows)  # 2 samples per process, summed over both
    for r in rows:  # the accuracy of 7 samples, counted once each over the two processes
        assert abs(7 * r["online_probe_top1"] - round(7 * r["online_probe_top1"])) < 1e-9, r
    assert (out / "checkpoints" / "step_4" / "custom_checkpoint_1.pkl").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_2", "step_4"]
    assert {p.name for p in (out / "checkpoints" / "step_4").glob("random_states_*.pkl")} == {
        "random_states_0.pkl", "random_states_1.pkl"}
    assert type(AutoModel.from_pretrained(out / "final")) is hf_jepa.ImageJepaModel
    assert "| batch_size | 4 |" in (out / "encoder" / "README.md").read_text()


# ----------------------------------------------------------------------------- d. a truncated video


def write_mp4(path: Path, seed: int) -> bytes:
    """A 16-frame 32x32 H.264 clip of a coloured square moving right; returns its bytes."""
    from torchcodec.encoders import VideoEncoder

    rng = np.random.default_rng(seed)
    frames = torch.zeros(16, 3, 32, 32, dtype=torch.uint8)  # (T, C, H, W)
    color = torch.from_numpy(rng.integers(64, 256, 3)).to(torch.uint8)[:, None, None]
    y = int(rng.integers(0, 24))
    for t in range(16):
        frames[t, :, y:y + 8, t:t + 8] = color
    VideoEncoder(frames, frame_rate=8).to_file(str(path), codec="libx264", pixel_format="yuv420p")
    return path.read_bytes()


def test_truncated_video_is_skipped_once_and_training_finishes(script, tmp_path, caplog) -> None:
    train = tmp_path / "videos" / "train"
    train.mkdir(parents=True)
    for k in range(4):
        write_mp4(train / f"clip{k}.mp4", k)
    data = write_mp4(train / "broken.mp4", 4)
    (train / "broken.mp4").write_bytes(data[: len(data) // 2])

    # one epoch: 4 good clips in 2 batches of 2 (the broken file's skip is reported with a good clip)
    with caplog.at_level(logging.WARNING, logger="hf_jepa.data._stream"):
        run_script(script, flags("vjepa2", tmp_path / "run", dataset_name=tmp_path / "videos",
                                 per_device_train_batch_size=2, max_steps=2))
    rows = read_metrics(tmp_path / "run")
    check_metrics(rows, 2)
    counts = [r["skipped_samples"] for r in rows]  # cumulative since the start of training
    assert counts == sorted(counts) and counts[-1] == 1, counts
    assert sum("broken.mp4" in r.getMessage() for r in caplog.records) == 1
    assert "| skipped_samples | 1 |" in (tmp_path / "run" / "encoder" / "README.md").read_text()
    assert (tmp_path / "run" / "final" / "model.safetensors").exists()


# ----------------------------------------------------------------------------- e. collapse monitors, online probe


BASE_COLORS = [(200, 50, 50), (50, 190, 70), (60, 80, 210), (210, 200, 50)]


def write_quadrant_images(folder: Path, *, test_classes: tuple[int, ...] = (0, 1, 2, 3), num_test: int = 16) -> Path:
    """A labelled parquet dataset (`image`, `color` ClassLabel of 4): 40x48 images of four uniform quadrants, each
    the class colour moved by up to +-50 per channel; 64 train images, `num_test` test images of `test_classes`."""
    from PIL import Image

    rng = np.random.default_rng(0)
    features = datasets.Features({"image": datasets.Image(),
                                  "color": datasets.ClassLabel(names=["red", "green", "blue", "yellow"])})
    (folder / "data").mkdir(parents=True)
    for split, n, classes in (("train", 64, (0, 1, 2, 3)), ("test", num_test, test_classes)):
        images, labels = [], []
        for i in range(n):
            k = classes[i % len(classes)]
            pixels = np.zeros((40, 48, 3), np.uint8)
            for y in (0, 20):
                for x in (0, 24):
                    pixels[y:y + 20, x:x + 24] = np.clip(np.array(BASE_COLORS[k]) + rng.integers(-50, 51, 3), 0, 255)
            images.append(Image.fromarray(pixels))
            labels.append(k)
        table = datasets.Dataset.from_dict({"image": images, "color": labels}, features=features)
        table.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


def write_identical_images(folder: Path) -> Path:
    """16 copies of one uniform-colour image: every crop of every sample has the same pixels."""
    from PIL import Image

    (folder / "train").mkdir(parents=True)
    for k in range(16):
        Image.new("RGB", (48, 40), (200, 40, 90)).save(folder / "train" / f"img{k}.png")
    return folder


def monitor_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hf_jepa.training.monitors"]


def test_collapsed_run_warns_and_a_healthy_run_does_not(script, tmp_path, caplog) -> None:
    """Meta's objective. Identical images collapse by construction (every sample has the same targets): the
    monitors show it and warn once each after the grace steps (half the run). Colour-quadrant images give a run
    whose predictor beats the per-position constant, a rank well above the collapsed one, no warning, and an online
    probe on the colour class that learns (chance: 25%)."""
    collapsed, healthy = tmp_path / "collapsed", tmp_path / "healthy"
    with caplog.at_level(logging.WARNING, logger="hf_jepa.training.monitors"):
        run_script(script, flags("ijepa", collapsed, dataset_name=write_identical_images(tmp_path / "same"),
                                 objective="meta", max_steps=40, log_every=10))
    rows = read_metrics(collapsed)
    check_metrics_every(rows, 40, 10)
    warnings = monitor_warnings(caplog)
    assert len(warnings) == 2, warnings
    assert "constant_baseline_ratio=" in warnings[0] and "at step 30" in warnings[0]
    assert "effective_rank=" in warnings[1] and "--objective sigreg" in warnings[1]
    for row in rows:
        assert row["target_std"] < 1e-6 and row["constant_baseline_ratio"] > 100 and row["effective_rank"] < 1.3

    caplog.clear()
    data = write_quadrant_images(tmp_path / "quadrants")
    with caplog.at_level(logging.WARNING, logger="hf_jepa.training.monitors"):
        run_script(script, flags("ijepa", healthy, dataset_name=data, objective="meta", max_steps=200, log_every=20,
                                 probe_label_column="color", probe_eval_samples=16))
    rows = read_metrics(healthy)
    check_metrics_every(rows, 200, 20)
    assert monitor_warnings(caplog) == []
    assert all(r["constant_baseline_ratio"] < 1 for r in rows[5:]), [r["constant_baseline_ratio"] for r in rows]
    assert min(r["effective_rank"] for r in rows) > 2.5  # collapsed: < 1.3
    assert rows[-1]["target_std"] > 0.1
    assert rows[-1]["online_probe_top1"] >= 0.9 and rows[-1]["online_probe_loss"] < 0.5 * rows[0]["online_probe_loss"]


def check_metrics_every(rows: list[dict], max_steps: int, every: int) -> None:
    assert [r["step"] for r in rows] == list(range(every, max_steps + 1, every))
    for row in rows:
        assert METRIC_KEYS <= row.keys() and "effective_rank_rows" in row, row


@pytest.mark.parametrize(("case", "error"), [
    ("missing_column", r"label column 'colour' is not in .* split 'train'; expected one of \[.*'color'"),
    ("one_class", r"probe_label_column='color' holds a single class \('green'\) in the 8 samples of split 'test'"),
    ("empty_split", r"probe_split='test' of .* yielded no sample"),
    ("unknown_split", r"probe_split='validation' is not a split of .*Bad split"),
])
def test_online_probe_bad_inputs_fail_before_training(script, tmp_path, case: str, error: str) -> None:
    layout = {"one_class": dict(test_classes=(1,), num_test=8), "empty_split": dict(num_test=0)}.get(case, {})
    data = write_quadrant_images(tmp_path / "data", **layout)
    probe = {"probe_label_column": "colour" if case == "missing_column" else "color",
             "probe_split": "validation" if case == "unknown_split" else "test"}
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=error):
        run_script(script, flags("ijepa", out, dataset_name=data, max_steps=2, **probe))
    assert not (out / "metrics.jsonl").exists() and not (out / "checkpoints").exists()


def test_online_probe_flags_are_validated() -> None:
    with pytest.raises(ValueError, match="probe_eval_samples=0: expected >= 1"):
        PretrainArguments(model_type="ijepa", probe_label_column="digit", probe_eval_samples=0)
    with pytest.raises(ValueError, match="probe_lr=0.0: expected > 0"):
        PretrainArguments(model_type="ijepa", probe_label_column="digit", probe_lr=0.0)
    with pytest.raises(ValueError, match="probe_label_column='image': expected a label column, not the image column"):
        PretrainArguments(model_type="ijepa", probe_label_column="image")
