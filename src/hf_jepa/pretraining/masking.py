"""The masks of a pretraining step, drawn in the training process from a generator seeded by (seed, step,
process): a resumed run draws exactly the masks the uninterrupted run would have."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hf_jepa.masks import (
    MultiBlockMaskConfig2D,
    MultiBlockMaskConfig3D,
    MultiBlockMaskGenerator2D,
    MultiBlockMaskGenerator3D,
)
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig


def mask_sampler(config: ImageJepaConfig | VideoJepaConfig, seed: int, process_index: int, *,
                 meta_compatible_masks: bool = False) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    """`prepare_batch(batch, step)` adding `context_mask` / `target_mask` drawn from a (seed, step, rank) generator
    (I-JEPA with `meta_compatible_masks`: Meta's collator quirks, `MultiBlockMaskConfig2D.meta_compatible_masks`)."""
    if isinstance(config, ImageJepaConfig):
        generator2d = MultiBlockMaskGenerator2D(config.grid_size,
                                                MultiBlockMaskConfig2D(meta_compatible_masks=True)
                                                if meta_compatible_masks else None)
    else:
        generator3d = MultiBlockMaskGenerator3D(config.grid, MultiBlockMaskConfig3D.for_grid(config.grid))
        image_grid = (1, *config.grid[1:])  # V-JEPA 2.1 image batches: one frame of tokens
        generator_image = MultiBlockMaskGenerator3D(image_grid, MultiBlockMaskConfig3D.for_grid(image_grid))

    def prepare(batch: dict[str, Any], step: int) -> dict[str, Any]:
        key = next(k for k in ("pixel_values", "pixel_values_videos") if k in batch)
        size = batch[key].shape[0]
        gen = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1_009 + process_index) % (2**63))
        if isinstance(config, ImageJepaConfig):
            masks = generator2d(size, generator=gen)
            extra = {"context_mask": masks.context[0], "target_mask": masks.targets}  # (B, K), (P, B, M)
        else:
            pairs = (generator_image if key == "pixel_values" else generator3d)(size, generator=gen)
            extra = {"context_mask": [p.context for p in pairs], "target_mask": [p.target for p in pairs]}
        keep = {k: v for k, v in batch.items() if k == key}  # labels are not model inputs
        return {**keep, **extra}

    return prepare
