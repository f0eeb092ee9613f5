"""Built-in datasets generated on first use (nothing to download): moving digits.

``moving_digits``: 16-frame 64x64 RGB clips (8 fps, H.264 mp4) of one scikit-learn digit (8x8,
upscaled bilinearly to 22-28 px, random color and brightness) moving in a straight line at
1.5-2.25 px/frame in one of 8 directions. Start positions are drawn so the digit stays on the
canvas for the whole clip (no bounce with the default speeds; positions are reflected at the
borders otherwise), so ``direction`` is the true motion of the whole clip.

``moving_digit_frames``: the first and last frame of each clip as PNG images (I-JEPA).

``textured_digits`` (images, I-JEPA) and ``textured_moving_digits`` (16-frame clips, V-JEPA 2): a digit of 30-42 px
in a random colour at a random place over a random crop of a natural photo shipped inside installed wheels
(``hf_jepa.data.textures``); in clips the digit moves in one of 8 directions and the photo pans in its own. Raw
pixels and a random-init encoder read the digit poorly on these; an encoder that learned shape reads it well.

Directions, counter-clockwise in screen coordinates (y grows downward):
0 right, 1 up-right, 2 up, 3 up-left, 4 left, 5 down-left, 6 down, 7 down-right.
(A horizontal flip maps direction d to (4 - d) mod 8: turn flips off to probe direction.)

Split: digit samples with ``sample_index % 5 == 0`` (360 of 1797) make ``test``, the rest
``train``: a fixed 80/20 split by digit sample, so test clips show unseen handwriting.

Layout (loads with ``datasets.load_dataset(path)``, streams sharded, pushes to the Hub as is)::

    $HF_JEPA_CACHE (default ~/.cache/hf_jepa)/builtin-v1/<name>[-train<N>-test<M>-seed<S>]/
        README.md            dataset card (YAML ``configs`` naming the splits)
        generation.json      parameters, row counts, seconds taken
        data/train-0000i-of-0000K.parquet, data/test-0000i-of-0000K.parquet

Columns: ``id`` (str), ``video`` (``datasets.Video``: mp4 bytes) or ``image`` (``datasets.Image``:
PNG bytes), ``digit``, ``direction``, ``sample_index``, ``digit_size``, ``speed``, ``start_x``,
``start_y`` (+ ``frame`` for images). Generation writes to a temp folder and renames it into place,
so concurrent ranks / interrupted runs never see a partial dataset; rerunning is a no-op.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hf_jepa.modeling.validation import check_positive

from .textures import hsv_to_rgb, upscale_glyph

logger = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_DATASETS",
    "BUILTIN_VERSION",
    "DIRECTIONS",
    "builtin_cache_dir",
    "builtin_dataset_path",
    "generate_builtin_dataset",
    "render_clip",
    "save_frame_strip",
]

BUILTIN_VERSION = "v1"
BUILTIN_DATASETS = ("moving_digits", "moving_digit_frames", "textured_digits", "textured_moving_digits")
VIDEO_DATASETS = ("moving_digits", "textured_moving_digits")
TEXTURED_DATASETS = ("textured_digits", "textured_moving_digits")
# (train, test) rows per dataset: clips for the video sets, clips (2 frames each) for moving_digit_frames, images for
# textured_digits.
DEFAULT_SIZES = {
    "moving_digits": (1600, 320),
    "moving_digit_frames": (1600, 320),
    "textured_digits": (6000, 1000),
    "textured_moving_digits": (2400, 480),
}
DEFAULT_SEED = 0
DEFAULT_NUM_SHARDS = 8

CANVAS = 64
NUM_FRAMES = 16
FPS = 8
DIGIT_SIZE = (22, 28)  # inclusive, px
SPEED = (1.5, 2.25)  # px / frame
BRIGHTNESS = (0.75, 1.0)
IMAGE_FRAMES = (0, NUM_FRAMES - 1)  # frames of each clip kept by moving_digit_frames
# unit (dx, dy) per direction, y pointing down: 0 right, 2 up, 4 left, 6 down
DIRECTIONS: tuple[tuple[float, float], ...] = tuple(
    (math.cos(k * math.pi / 4), -math.sin(k * math.pi / 4)) for k in range(8)
)
_SPLIT_CODE = {"train": 1, "test": 2}


def builtin_cache_dir() -> Path:
    """``$HF_JEPA_CACHE`` or ``~/.cache/hf_jepa``, versioned: ``<root>/builtin-v1``."""
    root = os.environ.get("HF_JEPA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hf_jepa")
    return Path(root) / f"builtin-{BUILTIN_VERSION}"


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip (drawn from the seeded RNG)."""

    id: str
    sample_index: int
    digit: int
    direction: int
    digit_size: int
    speed: float
    start_x: float
    start_y: float
    color: tuple[float, float, float]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: images float32 ``(1797, 8, 8)`` in [0, 1], labels ``(1797,)``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def _start(rng: np.random.Generator, velocity: float, free: int) -> float:
    """A start coordinate in [0, free] keeping ``start + velocity * (T - 1)`` in [0, free] when possible."""
    travel = velocity * (NUM_FRAMES - 1)
    low, high = max(0.0, -travel), min(float(free), free - travel)
    if low > high:  # cannot fit: any start, positions get reflected
        low, high = 0.0, float(free)
    return float(rng.uniform(low, high))


def _clip_specs(split: str, num_clips: int, seed: int, labels: np.ndarray) -> list[ClipSpec]:
    """Deterministic clip specs for ``split`` (independent streams per split)."""
    pool = np.array([i for i in range(len(labels)) if (i % 5 == 0) == (split == "test")])
    rng = np.random.default_rng([seed, _SPLIT_CODE[split]])
    specs = []
    for k in range(num_clips):
        sample_index = int(pool[rng.integers(len(pool))])
        direction = int(rng.integers(8))
        size = int(rng.integers(DIGIT_SIZE[0], DIGIT_SIZE[1] + 1))
        speed = float(rng.uniform(*SPEED))
        dx, dy = DIRECTIONS[direction]
        free = CANVAS - size
        hue = float(rng.uniform(0.0, 1.0))
        saturation = float(rng.uniform(0.0, 0.8))
        brightness = float(rng.uniform(*BRIGHTNESS))
        rgb = hsv_to_rgb(hue, saturation, brightness)
        specs.append(
            ClipSpec(
                id=f"{split}-{k:06d}",
                sample_index=sample_index,
                digit=int(labels[sample_index]),
                direction=direction,
                digit_size=size,
                speed=speed,
                start_x=_start(rng, speed * dx, free),
                start_y=_start(rng, speed * dy, free),
                color=(float(rgb[0]), float(rgb[1]), float(rgb[2])),
            )
        )
    return specs


def _reflect(p: np.ndarray, free: int) -> np.ndarray:
    """Reflect positions into [0, free] (bounce off the canvas borders)."""
    if free <= 0:
        return np.zeros_like(p)
    p = np.mod(p, 2 * free)
    return np.where(p > free, 2 * free - p, p)


def render_clip(spec: ClipSpec, digit_image: np.ndarray) -> torch.Tensor:
    """Render a clip: digit ``(8, 8)`` float in [0, 1] -> uint8 ``(NUM_FRAMES, 3, CANVAS, CANVAS)``.

    Pure numpy (tiny torch ops are slow with several intra-op threads on small CPUs).
    """
    size = spec.digit_size
    glyph = np.clip(upscale_glyph(digit_image, size), 0.0, 1.0)  # (size, size)
    sprite = glyph[None] * np.asarray(spec.color, dtype=np.float32)[:, None, None]  # (3, size, size)
    sprite = np.rint(sprite * 255.0).astype(np.uint8)
    dx, dy = DIRECTIONS[spec.direction]
    t = np.arange(NUM_FRAMES, dtype=np.float64)
    xs = np.rint(_reflect(spec.start_x + spec.speed * dx * t, CANVAS - size)).astype(int)
    ys = np.rint(_reflect(spec.start_y + spec.speed * dy * t, CANVAS - size)).astype(int)
    frames = np.zeros((NUM_FRAMES, 3, CANVAS, CANVAS), dtype=np.uint8)  # (T, 3, H, W)
    for i in range(NUM_FRAMES):
        frames[i, :, ys[i] : ys[i] + size, xs[i] : xs[i] + size] = sprite
    return torch.from_numpy(frames)


def _encode_mp4(frames: torch.Tensor) -> bytes:
    """uint8 ``(T, 3, H, W)`` -> H.264 mp4 bytes (torchcodec's ``VideoEncoder``)."""
    from torchcodec.encoders import VideoEncoder

    encoded = VideoEncoder(frames, frame_rate=FPS).to_tensor(
        "mp4",
        codec="libx264",
        pixel_format="yuv420p",
        crf=18,
        preset="veryfast",
        extra_options={"threads": 1},  # single-threaded x264: bit-exact within a process
    )
    return encoded.numpy().tobytes()


def _encode_png(image: torch.Tensor) -> bytes:
    """uint8 ``(3, H, W)`` -> PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())  # (3, H, W) -> (H, W, 3)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _features(name: str):
    import datasets

    media = {"video": datasets.Video()} if name in VIDEO_DATASETS else {"image": datasets.Image()}
    columns = {
        "id": datasets.Value("string"),
        **media,
        "digit": datasets.ClassLabel(names=[str(d) for d in range(10)]),
        "direction": datasets.Value("int64"),
        "sample_index": datasets.Value("int64"),
        "digit_size": datasets.Value("int64"),
    }
    if name in TEXTURED_DATASETS:
        columns.update(digit_x=datasets.Value("float32"), digit_y=datasets.Value("float32"),
                       texture=datasets.Value("int64"))
        if name == "textured_digits":
            del columns["direction"]  # a still image has no motion
        return datasets.Features(columns)
    columns.update(speed=datasets.Value("float32"), start_x=datasets.Value("float32"),
                   start_y=datasets.Value("float32"))
    if name == "moving_digit_frames":
        columns["frame"] = datasets.Value("int64")
    return datasets.Features(columns)


def _rows(name: str, specs: list[ClipSpec], images: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for spec in specs:
        clip = render_clip(spec, images[spec.sample_index])  # (T, 3, H, W)
        meta = {
            "digit": spec.digit,
            "direction": spec.direction,
            "sample_index": spec.sample_index,
            "digit_size": spec.digit_size,
            "speed": spec.speed,
            "start_x": spec.start_x,
            "start_y": spec.start_y,
        }
        if name == "moving_digits":
            rows.append({"id": spec.id, "video": {"bytes": _encode_mp4(clip), "path": None}, **meta})
        else:
            for t in IMAGE_FRAMES:
                image = {"bytes": _encode_png(clip[t]), "path": None}
                rows.append({"id": f"{spec.id}-f{t:02d}", "image": image, **meta, "frame": t})
    return rows


def _textured_rows(name: str, split: str, num_rows: int, seed: int, images: np.ndarray, labels: np.ndarray
                   ) -> list[dict[str, Any]]:
    """Rows of a textured set: digits of the split's pool over natural texture (images or 16-frame clips)."""
    from .textures import draw_textured_spec, load_textures, render_textured

    textures = load_textures()
    frames = NUM_FRAMES if name in VIDEO_DATASETS else 1
    pool = np.array([i for i in range(len(labels)) if (i % 5 == 0) == (split == "test")])
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], 1 + TEXTURED_DATASETS.index(name)])
    rows = []
    for k in range(num_rows):
        sample_index = int(pool[rng.integers(len(pool))])
        spec = draw_textured_spec(rng, frames=frames, textures=textures)
        pixels = torch.from_numpy(render_textured(spec, images[sample_index], frames=frames, textures=textures))
        meta = {"digit": int(labels[sample_index]), "direction": spec.direction, "sample_index": sample_index,
                "digit_size": spec.digit_size, "digit_x": spec.digit_x, "digit_y": spec.digit_y,
                "texture": spec.texture}
        if frames > 1:
            rows.append({"id": f"{split}-{k:06d}", "video": {"bytes": _encode_mp4(pixels), "path": None}, **meta})
        else:
            meta.pop("direction")
            rows.append({"id": f"{split}-{k:06d}", "image": {"bytes": _encode_png(pixels[0]), "path": None}, **meta})
    return rows


def _write_splits(name: str, out: Path, *, num_train: int, num_test: int, seed: int, num_shards: int) -> dict[str, int]:
    """Render, encode and write both splits as parquet shards; returns rows per split."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    images, labels = _digits()
    features = _features(name)
    schema = features.arrow_schema  # carries the datasets feature metadata (Video / Image / ClassLabel)
    (out / "data").mkdir(parents=True)
    counts = {}
    for split, num_clips in (("train", num_train), ("test", num_test)):
        if name in TEXTURED_DATASETS:
            rows = _textured_rows(name, split, num_clips, seed, images, labels)
        else:
            rows = _rows(name, _clip_specs(split, num_clips, seed, labels), images)
        counts[split] = len(rows)
        shards = min(num_shards, len(rows))
        bounds = np.linspace(0, len(rows), shards + 1).round().astype(int)
        for i in range(shards):
            part = rows[bounds[i] : bounds[i + 1]]
            table = pa.Table.from_pylist([features.encode_example(r) for r in part], schema=schema)
            pq.write_table(table, out / "data" / f"{split}-{i:05d}-of-{shards:05d}.parquet")
    return counts


_DESCRIPTIONS = {
    "moving_digits": "16-frame 64x64 clips at 8 fps of one digit moving in one of 8 directions "
                     "(0 right, 2 up, 4 left, 6 down).",
    "moving_digit_frames": f"64x64 frames {IMAGE_FRAMES} of the moving_digits clips.",
    "textured_digits": "64x64 images of one digit (30-42 px, random colour and place) over a random crop of a "
                       "natural photo shipped in scikit-learn / scikit-image / matplotlib.",
    "textured_moving_digits": "16-frame 64x64 clips at 8 fps of one digit (30-42 px, random colour) moving in one of "
                              "8 directions over a natural photo that pans in its own random direction.",
}


_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
  - split: test
    path: data/test-*.parquet
license: cc-by-4.0
task_categories:
- video-classification
---

# {name} (hf_jepa built-in, {version})

Generated by `hf_jepa.data.builtin` from scikit-learn's digits (seed {seed}): {counts}.
{description}
"""


def generate_builtin_dataset(
    name: str,
    out_dir: str | os.PathLike,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    seed: int = DEFAULT_SEED,
    num_shards: int = DEFAULT_NUM_SHARDS,
) -> Path:
    """Write built-in dataset ``name`` to ``out_dir`` (must not exist) as parquet shards.

    ``num_train`` / ``num_test`` count clips (``moving_digit_frames`` has ``len(IMAGE_FRAMES)``
    images per clip) or images (``textured_digits``); default ``DEFAULT_SIZES[name]``. Each split is cut into
    ``min(num_shards, rows)`` contiguous shards.
    Deterministic in ``seed``: labels, clip parameters and rendered frames; the H.264 bytes of a few clips differ
    from run to run with FFmpeg 5.1's libx264 (even single-threaded): a few pixel levels at a few pixels.
    Returns ``out_dir``.
    """
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown built-in dataset {name!r}; choose from {BUILTIN_DATASETS}")
    num_train = DEFAULT_SIZES[name][0] if num_train is None else num_train
    num_test = DEFAULT_SIZES[name][1] if num_test is None else num_test
    check_positive(num_train=num_train, num_test=num_test, num_shards=num_shards)
    out = Path(out_dir)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # all work here is tiny per-clip ops: threading only adds overhead
    try:
        counts = _write_splits(name, out, num_train=num_train, num_test=num_test, seed=seed, num_shards=num_shards)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    description = _DESCRIPTIONS[name]
    counts_text = ", ".join(f"{n} {s} rows" for s, n in counts.items())
    card = _CARD.format(name=name, version=BUILTIN_VERSION, seed=seed, counts=counts_text, description=description)
    if name not in VIDEO_DATASETS:
        card = card.replace("video-classification", "image-classification")
    (out / "README.md").write_text(card)
    params = {"name": name, "version": BUILTIN_VERSION, "num_train": num_train, "num_test": num_test, "seed": seed}
    info = {**params, "num_shards": num_shards, "rows": counts, "seconds": round(seconds, 2)}
    (out / "generation.json").write_text(json.dumps(info, indent=2))
    logger.info("generated %s (%s) in %.1f s at %s", name, counts_text, seconds, out)
    return out


def builtin_dataset_path(
    name: str,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    seed: int | None = None,
    num_shards: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Folder of built-in dataset ``name`` (``"moving_digits"`` or ``"moving_digit_frames"``), generated if missing.

    ``num_train`` / ``num_test`` (clips per split; default 1600 / 320), ``seed`` (0) and ``num_shards``
    (8 per split) select the variant; non-default ones get their own folder
    (``<name>-train<N>-test<M>-seed<S>-shards<K>``).
    Generation is atomic (temp folder + rename) and idempotent, so every rank of a launch may call
    this at once. ``cache_dir`` defaults to ``builtin_cache_dir()``.
    """
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown built-in dataset {name!r}; choose from {BUILTIN_DATASETS}")
    num_train = DEFAULT_SIZES[name][0] if num_train is None else num_train
    num_test = DEFAULT_SIZES[name][1] if num_test is None else num_test
    seed = DEFAULT_SEED if seed is None else seed
    num_shards = DEFAULT_NUM_SHARDS if num_shards is None else num_shards
    root = Path(cache_dir) if cache_dir is not None else builtin_cache_dir()
    defaults = (*DEFAULT_SIZES[name], DEFAULT_SEED, DEFAULT_NUM_SHARDS)
    folder = name
    if (num_train, num_test, seed, num_shards) != defaults:
        folder = f"{name}-train{num_train}-test{num_test}-seed{seed}-shards{num_shards}"
    final = root / folder
    if (final / "generation.json").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}-", dir=root))
    try:
        generate_builtin_dataset(
            name, tmp / "ds", num_train=num_train, num_test=num_test, seed=seed, num_shards=num_shards
        )
        try:
            os.rename(tmp / "ds", final)
        except OSError:
            if not (final / "generation.json").exists():  # not a lost race: a real error
                raise
            logger.info("%s was generated concurrently; using it", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def save_frame_strip(
    videos: torch.Tensor | Sequence[torch.Tensor],
    path: str | os.PathLike,
    *,
    titles: Sequence[str] | None = None,
    frame_labels: Sequence[str] | None = None,
    max_frames: int = 16,
) -> Path:
    """Save clips as a grid PNG: one row per clip, one column per frame.

    Args:
        videos: uint8 ``(N, T, 3, H, W)`` or a sequence of uint8 ``(T, 3, H, W)`` clips.
        path: output PNG.
        titles: optional row labels (one per clip).
        frame_labels: optional column labels (default ``t=0, t=1, ...``).
        max_frames: show at most this many frames per clip.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clips = list(videos)
    if not clips:
        raise ValueError("save_frame_strip needs at least one clip")
    num_frames = min(max_frames, max(c.shape[0] for c in clips))
    fig, axes = plt.subplots(len(clips), num_frames, figsize=(0.9 * num_frames + 1.2, 0.95 * len(clips)), squeeze=False)
    for row, clip in enumerate(clips):
        for col in range(num_frames):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < clip.shape[0]:
                ax.imshow(clip[col].permute(1, 2, 0).numpy())  # (3, H, W) -> (H, W, 3)
            if row == 0:
                ax.set_title(frame_labels[col] if frame_labels is not None else f"t={col}", fontsize=7)
        if titles is not None:
            axes[row][0].set_ylabel(titles[row], fontsize=7, rotation=0, ha="right", va="center")
    fig.subplots_adjust(left=0.1, right=0.99, top=0.93, bottom=0.01, wspace=0.04, hspace=0.06)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
