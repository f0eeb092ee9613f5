"""Streamed images for I-JEPA: same sharding / skipping contract as ``hf_jepa.data.video``.

>>> ds = load_image_dataset("builtin:moving_digit_frames", "train",
...                         image_config=ImageConfig(label_columns=("digit",)))
>>> batch = next(iter(dataloader(ds, batch_size=16)))  # pixel_values (16, 3, 64, 64), digit (16,)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from ._media import MediaConfig, stream_media
from ._stream import DecodingStream, collate, media_source

__all__ = ["ImageConfig", "collate_images", "decode_image", "load_image_dataset"]


@dataclass(frozen=True, kw_only=True)
class ImageConfig(MediaConfig):
    """How to augment and normalize images (I-JEPA pretraining defaults, small crop): the ``MediaConfig`` fields
    (random crop aspect ratio (3/4, 4/3), as torchvision) and the image column.

    Attributes:
        image_column: column holding the image (``Image`` feature, bytes or path).
    """

    media_column_field: ClassVar[str] = "image_column"

    image_column: str = "image"


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
    return stream_media(name_or_path, split, image_config or ImageConfig(), pixel_key="pixel_values",
                        decode=decode_image, streaming=streaming, rank=rank, world_size=world_size, seed=seed,
                        shuffle_buffer=shuffle_buffer, cache_dir=cache_dir)


def collate_images(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch image samples: ``{"pixel_values": FloatTensor (B, C, H, W), <labels> (B,), "skipped_samples": int}``."""
    return collate(samples, "pixel_values")
