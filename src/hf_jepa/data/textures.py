"""Digits over natural texture: the built-in data where a digit's shape, not its pixels, tells it apart.

A scikit-learn digit (8x8, upscaled to 30-42 px, random colour) is pasted over a random crop of a natural photo
shipped inside installed wheels (scikit-learn's ``china.jpg`` / ``flower.jpg``, scikit-image's data images,
matplotlib's ``grace_hopper.jpg``), at a random place. In clips the digit moves in one of 8 directions and the
background pans in its own random direction. With the background carrying most of the pixel variance and the
digit's place and colour random, raw pixels and a random-init encoder read the digit poorly; an encoder that learned
shape reads it well.

Everything is numpy (uint8 in, uint8 out) and deterministic in the spec: render a ``TexturedSpec`` with
``render_textured`` and you get the same frames on any machine (the photos are the wheels' files).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["TEXTURE_FILES", "TexturedSpec", "draw_textured_spec", "hsv_to_rgb", "load_textures", "render_textured",
           "upscale_glyph"]

CANVAS = 64
DIGIT_SIZE = (30, 42)  # inclusive, px: 4-5 patches of 8 px across
DIGIT_SPEED = (0.75, 1.25)  # px / frame, clips only
BACKGROUND_SPEED = (0.5, 1.5)  # px / frame, clips only
BACKGROUND_SCALES = (0.2, 0.3, 0.45)  # photo downscale factors: coarse to fine texture
BACKGROUND_CONTRAST = (0.5, 0.9)
MAX_FRAMES = 16

# (package, path inside it): natural photos and textures that ship inside wheels the project installs.
TEXTURE_FILES: tuple[tuple[str, str], ...] = (
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/brick.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/grass.png"),
    ("skimage", "data/gravel.png"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/retina.jpg"),
    ("skimage", "data/ihc.png"),
    ("skimage", "data/camera.png"),
    ("skimage", "data/moon.png"),
)

# (dx, dy) per direction, y down: builtin.DIRECTIONS's 8 directions (0 right, 2 up, 4 left, 6 down) on the pixel grid,
# so a diagonal moves sqrt(2) times the speed along each axis
DIRECTIONS = ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"texture source package {package!r} is not installed (pip install hf-jepa pulls it)")
    return Path(list(spec.submodule_search_locations)[0]) / relative


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    """Area-resize an RGB uint8 image ``(H, W, 3)`` by ``scale`` (PIL box filter) -> float32 ``(h, w, 3)`` in [0, 1]."""
    from PIL import Image

    h, w = image.shape[:2]
    size = (max(CANVAS + 32, round(w * scale)), max(CANVAS + 32, round(h * scale)))
    resized = Image.fromarray(image).resize(size, Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32) / 255.0


@lru_cache(maxsize=1)
def load_textures() -> tuple[tuple[np.ndarray, ...], ...]:
    """Every texture photo at every scale: ``textures[i][s]`` float32 ``(h, w, 3)`` in [0, 1].

    Photos are read once per process from the installed packages (grey ones are repeated to 3 channels).
    """
    from PIL import Image

    textures = []
    for package, relative in TEXTURE_FILES:
        with Image.open(_package_file(package, relative)) as img:
            rgb = np.asarray(img.convert("RGB"))  # (H, W, 3) uint8
        textures.append(tuple(_resize(rgb, s) for s in BACKGROUND_SCALES))
    return tuple(textures)


@dataclass(frozen=True)
class TexturedSpec:
    """Everything needed to render one textured sample (drawn by ``draw_textured_spec``)."""

    digit_size: int
    digit_x: float
    digit_y: float
    direction: int
    digit_speed: float
    color: tuple[float, float, float]
    texture: int
    scale: int
    background_x: float
    background_y: float
    background_vx: float
    background_vy: float
    contrast: float
    channel_order: tuple[int, int, int]


def hsv_to_rgb(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    """HSV in [0, 1] -> (r, g, b) in [0, 1]."""
    return tuple(  # type: ignore[return-value]
        value * (1 - saturation * (1 - max(0.0, min(1.0, abs((hue * 6 + shift) % 6 - 3) - 1)))) for shift in (0, 4, 2)
    )


def _start(rng: np.random.Generator, velocity: float, free: float, frames: int) -> float:
    """A start coordinate in [0, free] keeping the whole trajectory inside [0, free]."""
    travel = velocity * (frames - 1)
    low, high = max(0.0, -travel), min(free, free - travel)
    if low > high:
        low, high = 0.0, free
    return float(rng.uniform(low, high))


def draw_textured_spec(rng: np.random.Generator, *, frames: int, textures: tuple[tuple[np.ndarray, ...], ...]
                       ) -> TexturedSpec:
    """Draw one sample's digit size / place / motion / colour and its background crop / pan / contrast.

    Args:
        rng: the generator (one stream per split).
        frames: 1 for an image, the clip length for a clip (the digit and the background move only when > 1).
        textures: ``load_textures()`` (its sizes bound the background pan).
    """
    size = int(rng.integers(DIGIT_SIZE[0], DIGIT_SIZE[1] + 1))
    direction = int(rng.integers(len(DIRECTIONS)))
    speed = float(rng.uniform(*DIGIT_SPEED)) if frames > 1 else 0.0
    dx, dy = DIRECTIONS[direction]
    free = float(CANVAS - size)
    color = hsv_to_rgb(float(rng.uniform()), float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.7, 1.0)))
    if rng.uniform() < 0.3:  # some digits darker than their background
        color = tuple(0.25 * c for c in color)
    texture = int(rng.integers(len(textures)))
    scale = int(rng.integers(len(BACKGROUND_SCALES)))
    h, w = textures[texture][scale].shape[:2]
    angle = float(rng.uniform(0, 2 * np.pi))
    bg_speed = float(rng.uniform(*BACKGROUND_SPEED)) if frames > 1 else 0.0
    bvx, bvy = bg_speed * np.cos(angle), bg_speed * np.sin(angle)
    return TexturedSpec(
        digit_size=size,
        digit_x=_start(rng, speed * dx, free, frames),
        digit_y=_start(rng, speed * dy, free, frames),
        direction=direction,
        digit_speed=speed,
        color=(float(color[0]), float(color[1]), float(color[2])),
        texture=texture,
        scale=scale,
        background_x=_start(rng, bvx, float(w - CANVAS), frames),
        background_y=_start(rng, bvy, float(h - CANVAS), frames),
        background_vx=float(bvx),
        background_vy=float(bvy),
        contrast=float(rng.uniform(*BACKGROUND_CONTRAST)),
        channel_order=tuple(int(c) for c in rng.permutation(3)),  # type: ignore[arg-type]
    )


def upscale_glyph(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize (half-pixel centers): ``(h, w)`` -> ``(size, size)``."""
    h, w = image.shape

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(int)
        return low, np.minimum(low + 1, n_in - 1), (pos - low).astype(np.float32)

    y0, y1, wy = axis(h)
    x0, x1, wx = axis(w)
    rows = image[y0] * (1 - wy)[:, None] + image[y1] * wy[:, None]  # (size, w)
    return rows[:, x0] * (1 - wx)[None, :] + rows[:, x1] * wx[None, :]  # (size, size)


def render_textured(spec: TexturedSpec, digit_image: np.ndarray, *, frames: int,
                    textures: tuple[tuple[np.ndarray, ...], ...] | None = None) -> np.ndarray:
    """Render ``frames`` frames of a textured sample.

    Args:
        spec: from ``draw_textured_spec``.
        digit_image: the scikit-learn digit, float ``(8, 8)`` in [0, 1].
        frames: 1 for an image.
        textures: ``load_textures()`` (loaded if None).

    Returns:
        uint8 ``(frames, 3, CANVAS, CANVAS)``.
    """
    if not 1 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames={frames}: expected 1..{MAX_FRAMES}")
    textures = load_textures() if textures is None else textures
    photo = textures[spec.texture][spec.scale][:, :, list(spec.channel_order)]  # (h, w, 3)
    mean = photo.mean(axis=(0, 1), keepdims=True)
    photo = mean + spec.contrast * (photo - mean)
    size = spec.digit_size
    alpha = np.clip(upscale_glyph(digit_image, size), 0.0, 1.0)[:, :, None]  # (size, size, 1)
    color = np.asarray(spec.color, dtype=np.float32)[None, None, :]  # (1, 1, 3)
    dx, dy = DIRECTIONS[spec.direction]
    out = np.empty((frames, CANVAS, CANVAS, 3), dtype=np.float32)  # (T, H, W, 3)
    for t in range(frames):
        bx = int(round(spec.background_x + spec.background_vx * t))
        by = int(round(spec.background_y + spec.background_vy * t))
        frame = photo[by : by + CANVAS, bx : bx + CANVAS].copy()  # (H, W, 3)
        x = int(round(spec.digit_x + spec.digit_speed * dx * t))
        y = int(round(spec.digit_y + spec.digit_speed * dy * t))
        patch = frame[y : y + size, x : x + size]
        frame[y : y + size, x : x + size] = patch * (1 - alpha) + color * alpha
        out[t] = frame
    pixels = np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))  # (T, H, W, 3) -> (T, 3, H, W)
