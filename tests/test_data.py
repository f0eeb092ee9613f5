"""Tests for hf_jepa.data: built-in moving digits, streamed video / image pipelines, sharding, skipping."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from hf_jepa.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalTransform,
    ImageConfig,
    TrainTransform,
    VideoClipConfig,
    builtin_dataset_path,
    collate_clips,
    dataloader,
    decode_clip,
    generate_builtin_dataset,
    load_image_dataset,
    load_video_dataset,
)
from hf_jepa.data import builtin as builtin_mod
from hf_jepa.data._stream import resolve_source

NUM_TRAIN, NUM_TEST = 40, 16  # small built-in sets: 8 shards per split
LOW = min((0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))
HIGH = max((1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))


@pytest.fixture(autouse=True)
def _no_stream_shutdown_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # datasets sleeps 5 s after each full pass over a parquet stream (apache/arrow#45214 workaround)
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hf_jepa_cache")


@pytest.fixture(scope="module")
def digits_path(cache: Path) -> Path:
    return builtin_dataset_path("moving_digits", num_train=NUM_TRAIN, num_test=NUM_TEST, cache_dir=cache)


@pytest.fixture(scope="module")
def frames_path(cache: Path) -> Path:
    return builtin_dataset_path("moving_digit_frames", num_train=NUM_TRAIN, num_test=NUM_TEST, cache_dir=cache)


def _raw_rows(path: Path, split: str) -> list[dict]:
    ds = datasets.load_dataset(str(path), split=split, streaming=True)
    media = "video" if "video" in ds.features else "image"
    ds = ds.cast_column(media, type(ds.features[media])(decode=False))
    return list(ds)


def _ids(stream) -> list[str]:
    return [s["id"] for s in stream]


# ----------------------------------------------------------------------------- built-in generation


def test_generation_layout_deterministic_and_idempotent(tmp_path: Path, digits_path: Path) -> None:
    files = sorted(p.name for p in (digits_path / "data").iterdir())
    assert files == [f"{s}-{i:05d}-of-00008.parquet" for s in ("test", "train") for i in range(8)]
    assert not [p for p in digits_path.parent.iterdir() if p.name.startswith(".")], "temp folder left behind"
    # same call again: same folder, not regenerated
    stamp = (digits_path / "generation.json").stat().st_mtime_ns
    again = builtin_dataset_path("moving_digits", num_train=NUM_TRAIN, num_test=NUM_TEST, cache_dir=digits_path.parent)
    assert again == digits_path and (digits_path / "generation.json").stat().st_mtime_ns == stamp
    # regenerate from scratch with the same seed: identical labels and clip parameters, the same frames (the H.264
    # bytes themselves differ in a few clips from run to run with FFmpeg 5.1's libx264: a few pixel levels
    # at a few pixels after decoding)
    whole = VideoClipConfig(frames_per_clip=16, frame_step=1)
    other = generate_builtin_dataset("moving_digits", tmp_path / "a", num_train=NUM_TRAIN, num_test=NUM_TEST)
    for name in files:
        new, old = pq.read_table(other / "data" / name), pq.read_table(digits_path / "data" / name)
        assert new.drop(["video"]).equals(old.drop(["video"])), name
        for a, b in zip(new.column("video").to_pylist(), old.column("video").to_pylist(), strict=True):
            frames_a, frames_b = decode_clip(a, whole, None), decode_clip(b, whole, None)  # (T, 3, H, W) uint8
            assert frames_a.shape == frames_b.shape == (16, 3, 64, 64), name
            # encoding noise measured up to 0.1 mean levels; two different clips differ by 6 or more
            diff = (frames_a.float() - frames_b.float()).abs()  # (T, 3, H, W)
            assert diff.mean() < 1.0, (name, diff.mean(), diff.max())
    seed1 = generate_builtin_dataset("moving_digits", tmp_path / "b", num_train=8, num_test=8, seed=1, num_shards=2)
    first = pq.read_table(seed1 / "data" / "train-00000-of-00002.parquet").column("direction").to_pylist()
    base = pq.read_table(other / "data" / "train-00000-of-00008.parquet").column("direction").to_pylist()
    assert first != base[: len(first)]


def test_builtin_splits_and_labels(digits_path: Path) -> None:
    """digit = sklearn label of sample_index, test uses held-out digit samples, direction = measured motion."""
    from sklearn.datasets import load_digits

    targets = load_digits().target
    cfg = VideoClipConfig(frames_per_clip=16, frame_step=1)
    for split in ("train", "test"):
        rows = _raw_rows(digits_path, split)
        assert len(rows) == {"train": NUM_TRAIN, "test": NUM_TEST}[split]
        assert len({r["id"] for r in rows}) == len(rows)
        for row in rows:
            assert row["digit"] == targets[row["sample_index"]]
            assert (row["sample_index"] % 5 == 0) == (split == "test")
            clip = decode_clip(row["video"], cfg, generator=None)  # (16, 3, 64, 64) uint8
            assert clip.shape == (16, 3, 64, 64) and clip.dtype == torch.uint8
            mass = clip.float().sum(1)  # (T, H, W)
            coords = torch.arange(64, dtype=torch.float32)
            cx = (mass.sum(1) * coords).sum(-1) / mass.sum((1, 2))  # (T,)
            cy = (mass.sum(2) * coords).sum(-1) / mass.sum((1, 2))  # (T,)
            dx, dy = float(cx[-1] - cx[0]), float(cy[-1] - cy[0])
            assert math.hypot(dx, dy) > 15, row["id"]
            measured = round(math.atan2(-dy, dx) / (math.pi / 4)) % 8  # y grows downward
            assert measured == row["direction"], (row["id"], dx, dy)


def test_textured_digits_images_and_clips(cache: Path) -> None:
    """Textured sets: the digit's label and place are right, its pixels differ from the photo under it, the
    background differs between samples, clips move the digit in `direction` while the photo pans."""
    from sklearn.datasets import load_digits

    from hf_jepa.data.textures import DIRECTIONS, load_textures

    targets = load_digits().target
    assert len(load_textures()) >= 10
    images = builtin_dataset_path("textured_digits", num_train=12, num_test=6, num_shards=2, cache_dir=cache)
    for split, count in (("train", 12), ("test", 6)):
        rows = list(datasets.load_dataset(str(images), split=split))
        assert len(rows) == count and "direction" not in rows[0]
        for row in rows:
            assert row["digit"] == targets[row["sample_index"]]
            assert (row["sample_index"] % 5 == 0) == (split == "test")
            pixels = np.asarray(row["image"].convert("RGB"), dtype=np.float32)  # (64, 64, 3)
            assert pixels.shape == (64, 64, 3) and 30 <= row["digit_size"] <= 42
            assert pixels.std() > 10  # textured, not a flat background
        assert len({int(np.asarray(r["image"]).sum()) for r in rows}) == count
    clips = builtin_dataset_path("textured_moving_digits", num_train=6, num_test=2, num_shards=2, cache_dir=cache)
    whole = VideoClipConfig(frames_per_clip=16, frame_step=1)
    for row in _raw_rows(clips, "train"):
        frames = decode_clip(row["video"], whole, None).float()  # (16, 3, 64, 64)
        assert frames.shape == (16, 3, 64, 64)
        assert (frames[0] - frames[-1]).abs().mean() > 3  # the background pans
        assert row["digit"] == targets[row["sample_index"]] and 0 <= row["direction"] < len(DIRECTIONS)


def test_builtin_name_resolves_to_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_JEPA_CACHE", str(tmp_path))
    monkeypatch.setitem(builtin_mod.DEFAULT_SIZES, "moving_digits", (8, 8))
    expected = tmp_path / f"builtin-{builtin_mod.BUILTIN_VERSION}" / "moving_digits"
    assert resolve_source("builtin:moving_digits") == str(expected)
    assert resolve_source("moving_digits") == str(expected)
    ds = load_video_dataset("builtin:moving_digits", "test", shuffle_buffer=0)
    assert sum(1 for _ in ds) == 8


def test_frame_strip(tmp_path: Path, digits_path: Path) -> None:
    rows = _raw_rows(digits_path, "test")[:3]
    clips = [decode_clip(r["video"], VideoClipConfig(frames_per_clip=16, frame_step=1), None) for r in rows]
    out = builtin_mod.save_frame_strip(clips, tmp_path / "strip.png", titles=[r["id"] for r in rows])
    assert out.stat().st_size > 1000


# ----------------------------------------------------------------------------- streamed video


def test_video_batch_shapes_and_range(digits_path: Path) -> None:
    cfg = VideoClipConfig(frames_per_clip=8, frame_step=2, crop_size=48, label_columns=("id", "digit", "direction"))
    ds = load_video_dataset(str(digits_path), "train", clip_config=cfg, seed=3)
    batch = next(iter(dataloader(ds, batch_size=6)))
    x = batch["pixel_values_videos"]
    assert x.shape == (6, 8, 3, 48, 48) and x.dtype == torch.float32
    assert LOW - 1e-5 <= x.min() and x.max() <= HIGH + 1e-5
    assert x.std() > 0.1  # not all background
    assert batch["digit"].dtype == torch.long and batch["digit"].shape == (6,)
    assert batch["direction"].shape == (6,) and isinstance(batch["id"], list)
    assert batch["skipped_samples"] == 0
    # eval config: deterministic
    ev = VideoClipConfig(train=False, label_columns=("id",))
    a = next(iter(load_video_dataset(str(digits_path), "test", clip_config=ev, shuffle_buffer=0)))
    b = next(iter(load_video_dataset(str(digits_path), "test", clip_config=ev, shuffle_buffer=0)))
    assert a["id"] == b["id"] and torch.equal(a["pixel_values_videos"], b["pixel_values_videos"])
    assert a["pixel_values_videos"].shape == (8, 3, 64, 64)


def test_sharding_two_ranks_cover_split_once(digits_path: Path) -> None:
    cfg = VideoClipConfig(label_columns=("id",), crop_size=16)
    everything = {r["id"] for r in _raw_rows(digits_path, "train")}
    for epoch in (0, 1):
        per_rank = []
        for rank in (0, 1):
            ds = load_video_dataset(str(digits_path), "train", rank=rank, world_size=2, seed=7, clip_config=cfg)
            assert ds.num_shards == 4
            ds.set_epoch(epoch)
            per_rank.append(_ids(ds))
        assert not set(per_rank[0]) & set(per_rank[1])
        assert len(per_rank[0]) + len(per_rank[1]) == len(everything)
        assert set(per_rank[0]) | set(per_rank[1]) == everything
        # dataloader workers inside a rank: still each of the rank's samples exactly once
        ds = load_video_dataset(str(digits_path), "train", rank=1, world_size=2, seed=7, clip_config=cfg)
        ds.set_epoch(epoch)
        ids = [i for batch in dataloader(ds, batch_size=4, num_workers=2) for i in batch["id"]]
        assert sorted(ids) == sorted(per_rank[1])


def test_set_epoch_reshuffles(digits_path: Path) -> None:
    ds = load_video_dataset(str(digits_path), "train", clip_config=VideoClipConfig(label_columns=("id",), crop_size=16))
    ds.set_epoch(0)
    first = _ids(ds)
    ds.set_epoch(1)
    second = _ids(ds)
    assert sorted(first) == sorted(second) and first != second


def _write_mp4(path: Path, num_frames: int, seed: int) -> bytes:
    spec = builtin_mod._clip_specs("train", seed + 1, 0, np.zeros(1797, dtype=np.int64))[seed]
    images, _ = builtin_mod._digits()
    clip = builtin_mod.render_clip(spec, images[spec.sample_index])[:num_frames]  # (T, 3, 64, 64)
    data = builtin_mod._encode_mp4(clip)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("num_workers", [0, 2])
def test_truncated_video_is_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, num_workers: int
) -> None:
    folder = tmp_path / "videos" / "train"
    folder.mkdir(parents=True)
    for k in range(5):
        _write_mp4(folder / f"clip{k}.mp4", 16, k)
    data = _write_mp4(folder / "broken.mp4", 16, 5)
    (folder / "broken.mp4").write_bytes(data[: len(data) // 2])
    (folder / "metadata.csv").write_text(
        "file_name,label\n" + "".join(f"clip{k}.mp4,{k}\n" for k in range(5)) + "broken.mp4,9\n"
    )
    ds = load_video_dataset(
        str(tmp_path / "videos"),
        "train",
        clip_config=VideoClipConfig(label_columns=("label",)),
        cache_dir=str(tmp_path / "hf"),
    )
    assert ds.num_shards >= 2
    with caplog.at_level(logging.WARNING, logger="hf_jepa.data._stream"):
        batches = list(dataloader(ds, batch_size=2, num_workers=num_workers))
    assert sum(b["pixel_values_videos"].shape[0] for b in batches) == 5
    assert sorted(int(x) for b in batches for x in b["label"]) == [0, 1, 2, 3, 4]
    assert sum(b["skipped_samples"] for b in batches) == 1
    if num_workers == 0:
        assert any("broken.mp4" in r.getMessage() for r in caplog.records)


def test_too_short_video_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "videos" / "train"
    folder.mkdir(parents=True)
    _write_mp4(folder / "long.mp4", 16, 0)
    _write_mp4(folder / "short.mp4", 4, 1)  # 4 frames < (8 - 1) * 2 + 1
    ds = load_video_dataset(str(tmp_path / "videos"), "train", cache_dir=str(tmp_path / "hf"))
    samples = list(ds)
    assert len(samples) == 1 and sum(s["skipped_samples"] for s in samples) == 1
    assert collate_clips(samples)["pixel_values_videos"].shape == (1, 8, 3, 64, 64)


# ----------------------------------------------------------------------------- images


def test_image_batch_and_sharding(frames_path: Path) -> None:
    cfg = ImageConfig(crop_size=32, label_columns=("id", "digit"))
    batch = next(iter(dataloader(load_image_dataset(str(frames_path), "train", image_config=cfg), batch_size=5)))
    assert batch["pixel_values"].shape == (5, 3, 32, 32) and batch["pixel_values"].dtype == torch.float32
    assert LOW - 1e-5 <= batch["pixel_values"].min() and batch["pixel_values"].max() <= HIGH + 1e-5
    assert batch["digit"].shape == (5,) and batch["skipped_samples"] == 0
    every = {r["id"] for r in _raw_rows(frames_path, "test")}
    assert len(every) == 2 * NUM_TEST
    parts = [_ids(load_image_dataset(str(frames_path), "test", rank=r, world_size=2, image_config=cfg)) for r in (0, 1)]
    assert not set(parts[0]) & set(parts[1]) and set(parts[0]) | set(parts[1]) == every
    assert len(parts[0]) + len(parts[1]) == len(every)


def test_corrupt_image_is_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    folder = tmp_path / "images" / "train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"img{k}.png")
    data = (folder / "img0.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 2])
    ds = load_image_dataset(str(tmp_path / "images"), "train", cache_dir=str(tmp_path / "hf"))
    with caplog.at_level(logging.WARNING, logger="hf_jepa.data._stream"):
        batches = list(dataloader(ds, batch_size=3))
    assert sum(b["pixel_values"].shape[0] for b in batches) == 4
    assert sum(b["skipped_samples"] for b in batches) == 1
    assert any("broken.png" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- transforms / configs


def test_transforms_share_crop_across_frames() -> None:
    clip = torch.arange(64, dtype=torch.uint8).view(1, 1, 1, 64).expand(4, 3, 64, 64).contiguous()  # (T, C, H, W)
    out = TrainTransform(size=32)(clip, torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 32, 32) and torch.equal(out[0], out[3])
    ev = EvalTransform(size=32)(clip)
    assert ev.shape == (4, 3, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"frames_per_clip": 0}, "frames_per_clip"),
        ({"frame_step": 0}, "frame_step"),
        ({"random_resized_scale": (0.8, 0.3)}, "random_resized_scale"),
        ({"random_resized_aspect_ratio": (0.0, 1.0)}, "random_resized_aspect_ratio"),
        ({"label_columns": "digit"}, "label_columns"),
    ],
)
def test_config_validation_names_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VideoClipConfig(**kwargs)
