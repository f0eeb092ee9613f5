"""Streamed images for I-JEPA: same sharding / skipping contract as ``hf_jepa.data.video``.

>>> ds = load_image_dataset("builtin:moving_digit_frames", "train",
...                         image_config=ImageConfig(label_columns=("digit",)))
>>> batch = next(iter(dataloader(ds, batch_size=16)))  # pixel_values (16, 3, 64, 64), digit (16,)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ._stream import DecodingStream, collate, media_source, open_stream
from .transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform
from .video import _check_range

__all__ = ["ImageConfig", "collate_images", "decode_image", "load_image_dataset"]


@dataclass(frozen=True)
class ImageConfig:
    """How to augment and normalize images (I-JEPA pretraining defaults, small crop).

    Attributes:
        crop_size: output H = W.
        random_resized_scale: area fraction range of the random crop (I-JEPA: (0.3, 1.0)).
        random_resized_aspect_ratio: w/h range of the random crop (torchvision: (3/4, 4/3)).
        horizontal_flip: flip with p = 0.5.
        mean, std: per-channel normalization (ImageNet by default).
        image_column: column holding the image (``Image`` feature, bytes or path).
        label_columns: columns copied to every sample.
        id_column: column naming a sample in logs (None: the image path, else the stream index).
        train: True = random resized crop + flip; False = resize + center crop (``EvalTransform``).
        eval_crop_fraction: eval resizes the short side to ``crop_size / eval_crop_fraction``.
    """

    crop_size: int = 64
    random_resized_scale: tuple[float, float] = (0.3, 1.0)
    random_resized_aspect_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    horizontal_flip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    image_column: str = "image"
    label_columns: tuple[str, ...] = ()
    id_column: str | None = None
    train: bool = True
    eval_crop_fraction: float = 0.875

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.crop_size < 1:
            raise ValueError(f"{name}.crop_size must be >= 1, got {self.crop_size}")
        _check_range(name, "random_resized_scale", self.random_resized_scale, 0.0, 1.0)
        _check_range(name, "random_resized_aspect_ratio", self.random_resized_aspect_ratio, 0.0, None)
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"{name}.mean/std must be 3 values with std > 0, got {self.mean!r} / {self.std!r}")
        if not self.image_column:
            raise ValueError(f"{name}.image_column must be a column name, got {self.image_column!r}")
        if isinstance(self.label_columns, str):
            raise ValueError(f"{name}.label_columns must be a tuple of names, got the string {self.label_columns!r}")
        object.__setattr__(self, "label_columns", tuple(self.label_columns))
        if self.image_column in self.label_columns:
            raise ValueError(f"{name}.label_columns must not contain image_column={self.image_column!r}")
        if not 0 < self.eval_crop_fraction <= 1:
            raise ValueError(f"{name}.eval_crop_fraction must be in (0, 1], got {self.eval_crop_fraction}")

    def transform(self) -> TrainTransform | EvalTransform:
        """The image transform: uint8 ``(C, H, W)`` -> float32 ``(C, crop_size, crop_size)``."""
        if self.train:
            return TrainTransform(
                size=self.crop_size,
                scale=self.random_resized_scale,
                ratio=self.random_resized_aspect_ratio,
                hflip_prob=0.5 if self.horizontal_flip else 0.0,
                mean=self.mean,
                std=self.std,
            )
        return EvalTransform(size=self.crop_size, crop_fraction=self.eval_crop_fraction, mean=self.mean, std=self.std)


def decode_image(source: Any, generator: torch.Generator | None = None) -> torch.Tensor:
    """Decode an image (``{"bytes", "path"}`` dict, bytes, path or PIL image) -> uint8 RGB ``(3, H, W)``.

    Raises on corrupt / truncated input (PIL fully loads the pixels). ``generator`` is unused.
    """
    if isinstance(source, Image.Image):
        image = source
    else:
        data = media_source(source)
        image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    image.load()  # force a full decode: truncated files fail here, not later
    array = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()  # (H, W, 3) -> (3, H, W)


def load_image_dataset(
    name_or_path: str = "builtin:moving_digit_frames",
    split: str = "train",
    *,
    streaming: bool = True,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    image_config: ImageConfig | None = None,
    shuffle_buffer: int = 1024,
    cache_dir: str | None = None,
) -> DecodingStream:
    """Stream one split of an image dataset, sharded for this rank (see ``load_video_dataset``).

    ``name_or_path``: Hub id, local folder (parquet shards or an imagefolder), or a built-in name
    (``"builtin:moving_digit_frames"``). Yields ``{"pixel_values": FloatTensor (C, H, W), **labels,
    "skipped_samples": int}``; has ``set_epoch(epoch)``.
    """
    config = image_config or ImageConfig()
    keep = config.label_columns + ((config.id_column,) if config.id_column else ())
    stream = open_stream(
        name_or_path,
        split,
        media_column=config.image_column,
        keep_columns=keep,
        streaming=streaming,
        rank=rank,
        world_size=world_size,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        cache_dir=cache_dir,
    )
    return DecodingStream(
        stream,
        pixel_key="pixel_values",
        media_column=config.image_column,
        label_columns=config.label_columns,
        id_column=config.id_column,
        decode=decode_image,
        transform=config.transform(),
        seed=seed,
        rank=rank,
    )


def collate_images(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch image samples: ``{"pixel_values": FloatTensor (B, C, H, W), <labels> (B,), "skipped_samples": int}``."""
    return collate(samples, "pixel_values")
