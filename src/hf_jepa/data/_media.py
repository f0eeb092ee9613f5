"""What the image and video pipelines share: the crop / augmentation / column settings and the stream they open.

``ImageConfig`` (``images.py``) and ``VideoClipConfig`` (``video.py``) extend ``MediaConfig`` with their media
column (``image_column`` / ``video_column``) and, for video, the clip sampling fields; ``stream_media`` opens a
sharded ``DecodingStream`` for either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from hf_jepa.modeling.validation import (
    check_bool,
    check_name,
    check_numbers,
    check_ordered_pair,
    check_positive,
    check_range,
)

from ._stream import DecodingStream, open_stream
from .transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform


@dataclass(frozen=True, kw_only=True)
class MediaConfig:
    """How to crop, augment and normalize images or clips, and which columns a sample carries.

    Attributes:
        crop_size: output H = W.
        random_resized_scale: area fraction range of the random crop (I-JEPA, V-JEPA 2: (0.3, 1.0)).
        random_resized_aspect_ratio: w/h range of the random crop.
        horizontal_flip: flip with p = 0.5 (a clip as a whole).
        mean, std: per-channel normalization (ImageNet by default).
        label_columns: columns copied to every sample.
        id_column: column naming a sample in logs (None: the media path, else the stream index).
        train: True = random resized crop + flip (+ a random clip start); False = resize + center crop
            (``EvalTransform``) (+ the centered clip).
        eval_crop_fraction: eval resizes the short side to ``crop_size / eval_crop_fraction``.
    """

    # The field naming the media column ("image_column" / "video_column"), set by each subclass.
    media_column_field: ClassVar[str]

    crop_size: int = 64
    random_resized_scale: tuple[float, float] = (0.3, 1.0)
    random_resized_aspect_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    horizontal_flip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    label_columns: tuple[str, ...] = ()
    id_column: str | None = None
    train: bool = True
    eval_crop_fraction: float = 0.875

    @property
    def media_column(self) -> str:
        """The column holding the image or video."""
        return getattr(self, self.media_column_field)

    def __post_init__(self) -> None:
        # frozen dataclass: normalise (e.g. YAML lists -> tuples) through object.__setattr__
        check_positive(crop_size=self.crop_size)
        for name in ("random_resized_scale", "random_resized_aspect_ratio"):
            high = 1.0 if name == "random_resized_scale" else None
            object.__setattr__(self, name, check_ordered_pair(name, getattr(self, name), 0.0, high))
        check_bool(horizontal_flip=self.horizontal_flip, train=self.train)
        object.__setattr__(self, "mean", check_numbers("mean", self.mean, 3))
        object.__setattr__(self, "std", check_numbers("std", self.std, 3, positive=True))
        check_name(**{self.media_column_field: self.media_column})
        labels = self.label_columns
        if isinstance(labels, str) or not all(isinstance(c, str) and c for c in labels):
            raise ValueError(f"label_columns={labels!r}: expected a tuple of column names")
        object.__setattr__(self, "label_columns", tuple(labels))
        if self.media_column in self.label_columns:
            raise ValueError(f"label_columns={self.label_columns!r}: expected names other than "
                             f"{self.media_column_field}={self.media_column!r}")
        if self.id_column is not None:
            check_name(id_column=self.id_column)
        check_range("eval_crop_fraction", self.eval_crop_fraction, 0.0, 1.0, include_low=False)

    def transform(self) -> TrainTransform | EvalTransform:
        """The transform: uint8 ``(..., C, H, W)`` -> float32 ``(..., C, crop_size, crop_size)``."""
        if self.train:
            return TrainTransform(size=self.crop_size, scale=self.random_resized_scale,
                                  ratio=self.random_resized_aspect_ratio,
                                  hflip_prob=0.5 if self.horizontal_flip else 0.0, mean=self.mean, std=self.std)
        return EvalTransform(size=self.crop_size, crop_fraction=self.eval_crop_fraction, mean=self.mean, std=self.std)


def stream_media(
    name_or_path: str,
    split: str,
    config: MediaConfig,
    *,
    pixel_key: str,
    decode: Callable[[Any, torch.Generator], torch.Tensor],
    **stream_options: Any,
) -> DecodingStream:
    """Open one split as a sharded stream of ``{pixel_key: FloatTensor, **labels, "skipped_samples": int}``.

    ``stream_options``: ``open_stream``'s (streaming, rank, world_size, seed, shuffle_buffer, cache_dir); the rank
    and seed also seed the augmentations.
    """
    keep = config.label_columns + ((config.id_column,) if config.id_column else ())
    stream = open_stream(name_or_path, split, media_column=config.media_column, keep_columns=keep, **stream_options)
    return DecodingStream(stream, pixel_key=pixel_key, media_column=config.media_column,
                          label_columns=config.label_columns, id_column=config.id_column, decode=decode,
                          transform=config.transform(), seed=stream_options["seed"], rank=stream_options["rank"])
