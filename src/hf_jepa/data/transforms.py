"""Shared image / video transforms for I-JEPA and V-JEPA 2 pipelines.

All transforms take uint8 tensors laid out ``(..., C, H, W)`` -- a single image ``(C, H, W)`` or a
clip ``(T, C, H, W)`` -- and return float32 tensors of the same layout, normalized with a per-channel
mean / std. A clip gets ONE crop and ONE flip decision for all its frames (as V-JEPA 2's
``VideoTransform``), so motion is preserved.

Randomness comes from an explicit ``torch.Generator``, never the global RNG, so a stream is
reproducible per (seed, epoch, rank, dataloader worker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torchvision.transforms.v2.functional as TF

if TYPE_CHECKING:
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EvalTransform",
    "TrainTransform",
    "frame_transform",
    "normalize",
    "random_resized_crop_params",
]


def normalize(
    x: torch.Tensor,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """uint8 ``(..., C, H, W)`` in [0, 255] -> float32 ``(..., C, H, W)``, ``(x / 255 - mean) / std``."""
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize expects a uint8 tensor, got dtype={x.dtype}")
    if x.shape[-3] != len(mean) or len(mean) != len(std):
        raise ValueError(f"normalize: channels={x.shape[-3]} but len(mean)={len(mean)}, len(std)={len(std)}")
    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)  # (C, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)  # (C, 1, 1)
    return (x.float().div_(255.0) - mean_t) / std_t


def random_resized_crop_params(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """Sample an Inception-style crop box ``(top, left, h, w)`` (torchvision's algorithm, seeded).

    The crop covers a fraction ``scale`` of the area with aspect ratio ``w / h`` log-uniform in
    ``ratio``; after 10 failed draws it falls back to a center crop clamped to ``ratio``.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(2, generator=generator, dtype=torch.float64)
        target_area = area * (scale[0] + (scale[1] - scale[0]) * float(u[0]))
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * float(u[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@dataclass(frozen=True)
class TrainTransform:
    """Random resized crop + horizontal flip + normalize (I-JEPA / V-JEPA 2 pretraining augmentation).

    Call with a uint8 ``(..., C, H, W)`` tensor (image or clip) and a generator; returns float32
    ``(..., C, size, size)``. One crop box and one flip decision are shared across leading dims.
    """

    size: int
    scale: tuple[float, float] = (0.3, 1.0)
    ratio: tuple[float, float] = (0.75, 1.35)
    hflip_prob: float = 0.5
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        height, width = x.shape[-2:]
        top, left, h, w = random_resized_crop_params(height, width, self.scale, self.ratio, generator)
        x = TF.resized_crop(x, top, left, h, w, [self.size, self.size], antialias=True)  # (..., C, size, size)
        if self.hflip_prob > 0 and float(torch.rand(1, generator=generator)) < self.hflip_prob:
            x = TF.horizontal_flip(x)
        return normalize(x, self.mean, self.std)


@dataclass(frozen=True)
class EvalTransform:
    """Resize the short side to ``int(size / crop_fraction)``, center crop ``size``, normalize.

    The evaluation geometry of every saved model: the processor saved beside a model
    (``hf_jepa.processing.build_processor``) is built from this transform and computes the same pixels: the short
    side floored as Meta's and transformers' ``int(crop_size * 256 / 224)``, bilinear antialiased resize of the uint8
    frames, crop offsets floored (``(H' - size) // 2``) as transformers' ``center_crop``.

    Deterministic; the ``generator`` argument is accepted (and ignored) so train and eval
    transforms are interchangeable. uint8 ``(..., C, H, W)`` -> float32 ``(..., C, size, size)``.
    """

    size: int
    crop_fraction: float = 0.875
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def short_side(self) -> int:
        """The side the shorter image side is resized to before the crop."""
        return int(self.size / self.crop_fraction)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = TF.resize(x, [self.short_side], antialias=True)  # (..., C, H', W'), min(H', W') == short_side
        height, width = x.shape[-2:]
        x = TF.crop(x, (height - self.size) // 2, (width - self.size) // 2, self.size, self.size)  # (..., C, S, S)
        return normalize(x, self.mean, self.std)


def frame_transform(model: JepaWorldModel) -> EvalTransform:
    """uint8 (T, C, H, W) -> float (T, C, S, S): whole-frame resize (no crop) + the encoder's normalisation.

    The frames of a world model: its training data (`hf_jepa.world_model`), its planner's observations and goals
    (`hf_jepa.planning.world_model_planner`) and the subgoal graph's nodes (`hf_jepa.planning.subgoals`).
    """
    cfg = model.config.encoder_config
    return EvalTransform(cfg.image_size, crop_fraction=1.0, mean=tuple(cfg.image_mean), std=tuple(cfg.image_std))
