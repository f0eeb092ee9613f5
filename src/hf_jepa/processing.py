"""Processor configs for saved models: transformers' own processors with the size and mean/std of the config.

Video (V-JEPA 2): `VJEPA2VideoProcessor` (resize the short side to `image_size * 256 / 224`, center crop
`image_size`, rescale, normalise): what `AutoVideoProcessor` and the `video-classification` pipeline load.
Images (I-JEPA): `ViTImageProcessor` (resize to `image_size` x `image_size`, rescale, normalise): what
`AutoImageProcessor` and the `image-classification` / `image-feature-extraction` pipelines load.

The probing data pipeline uses the same geometry (`VIDEO_EVAL_CROP_FRACTION`, `IMAGE_EVAL_CROP_FRACTION`), so a
probe evaluates inputs the way the saved model's pipeline will see them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import PreTrainedConfig, PreTrainedModel, ViTImageProcessor, VJEPA2VideoProcessor

from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig

__all__ = [
    "IMAGE_EVAL_CROP_FRACTION",
    "VIDEO_EVAL_CROP_FRACTION",
    "build_processor",
    "save_processor",
]

logger = logging.getLogger(__name__)

#: `VJEPA2VideoProcessor` resizes the short side to crop * 256 / 224, then center-crops: crop fraction 224 / 256.
VIDEO_EVAL_CROP_FRACTION = 224 / 256
#: `ViTImageProcessor` resizes straight to the crop: crop fraction 1 (square inputs keep all their pixels).
IMAGE_EVAL_CROP_FRACTION = 1.0


def _config_of(model_or_config: PreTrainedModel | PreTrainedConfig) -> PreTrainedConfig:
    config = model_or_config.config if isinstance(model_or_config, PreTrainedModel) else model_or_config
    if isinstance(config, JepaWorldModelConfig):
        return config.encoder_config
    return config


def build_processor(
    model_or_config: PreTrainedModel | PreTrainedConfig,
) -> VJEPA2VideoProcessor | ViTImageProcessor:
    """The processor of a V-JEPA 2 (video) or I-JEPA (image) model or config, with its size and mean/std.

    Video: `VJEPA2VideoProcessor(crop_size=image_size)` turns a (T, H, W, C) clip into `pixel_values_videos`
    (1, T, C, image_size, image_size). Image: `ViTImageProcessor(size=image_size)` turns images into
    `pixel_values` (B, C, image_size, image_size).
    """
    config = _config_of(model_or_config)
    mean, std = list(config.image_mean), list(config.image_std)
    if isinstance(config, VideoJepaConfig):
        return VJEPA2VideoProcessor(crop_size=config.image_size, image_mean=mean, image_std=std)
    if isinstance(config, ImageJepaConfig):
        size = {"height": config.image_size, "width": config.image_size}
        return ViTImageProcessor(size=size, image_mean=mean, image_std=std)
    raise TypeError(f"build_processor: expected a V-JEPA 2 or I-JEPA model or config, got {type(config).__name__}")


def save_processor(model_or_config: PreTrainedModel | PreTrainedConfig, folder: str | Path) -> Path:
    """Write the processor config of `model_or_config` into `folder` (beside its `config.json`).

    Writes `video_preprocessor_config.json` (video) or `preprocessor_config.json` (images), so `AutoVideoProcessor`
    / `AutoImageProcessor` and `transformers.pipeline(..., model=folder)` find it. Returns `folder`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    processor = build_processor(model_or_config)
    processor.save_pretrained(folder)
    logger.info("saved %s to %s", type(processor).__name__, folder)
    return folder
