"""Processor configs for saved models: transformers' own processors built from the one evaluation transform.

A model's evaluation preprocessing is ONE `hf_jepa.data.EvalTransform` (`eval_transform`): resize the short side to
`int(image_size / crop_fraction)`, centre-crop `image_size`, normalise with the config's mean / std. The probing job
extracts its features with it, and `build_processor` turns the same transform into the transformers processor saved
beside a model, which computes the same pixels (tested by value, non-square images and video included):

- video (V-JEPA 2): `VJEPA2VideoProcessor(crop_size=image_size)`, short side `int(image_size * 256 / 224)` (crop
  fraction 224/256, Meta's evaluation); what `AutoVideoProcessor` and the `video-classification` pipeline load.
- images (I-JEPA): `BitImageProcessor` (resize the short side, centre crop, rescale, normalise; bilinear) with crop
  fraction 1: a square image keeps all its pixels, a non-square one keeps its aspect ratio (centre crop, never
  squashed); what `AutoImageProcessor` and the `image-classification` / `image-feature-extraction` pipelines load.
"""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import BitImageProcessor, PreTrainedConfig, PreTrainedModel, VJEPA2VideoProcessor
from transformers.image_utils import PILImageResampling

from hf_jepa.data.transforms import EvalTransform
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig

__all__ = [
    "IMAGE_EVAL_CROP_FRACTION",
    "VIDEO_EVAL_CROP_FRACTION",
    "build_processor",
    "eval_transform",
    "save_processor",
]

logger = logging.getLogger(__name__)

#: Video: the short side is resized to crop * 256 / 224, then centre-cropped (Meta's and `VJEPA2VideoProcessor`'s).
VIDEO_EVAL_CROP_FRACTION = 224 / 256
#: Images: the short side is resized to the crop, then centre-cropped (square inputs keep all their pixels).
IMAGE_EVAL_CROP_FRACTION = 1.0


def _config_of(model_or_config: PreTrainedModel | PreTrainedConfig) -> PreTrainedConfig:
    config = model_or_config.config if isinstance(model_or_config, PreTrainedModel) else model_or_config
    if isinstance(config, JepaWorldModelConfig):
        return config.encoder_config
    return config


def eval_transform(model_or_config: PreTrainedModel | PreTrainedConfig) -> EvalTransform:
    """The evaluation transform of a V-JEPA 2 (video) or I-JEPA (image) model or config: uint8 (..., C, H, W) ->
    float (..., C, image_size, image_size) with the config's mean / std; crop fraction 224/256 for video, 1 for
    images. The probing job's features and the saved processor (`build_processor`) both compute it."""
    config = _config_of(model_or_config)
    if isinstance(config, VideoJepaConfig):
        crop = VIDEO_EVAL_CROP_FRACTION
    elif isinstance(config, ImageJepaConfig):
        crop = IMAGE_EVAL_CROP_FRACTION
    else:
        raise TypeError(f"eval_transform: expected a V-JEPA 2 or I-JEPA model or config, got {type(config).__name__}")
    return EvalTransform(config.image_size, crop_fraction=crop, mean=tuple(config.image_mean),
                         std=tuple(config.image_std))


def build_processor(
    model_or_config: PreTrainedModel | PreTrainedConfig,
) -> VJEPA2VideoProcessor | BitImageProcessor:
    """The transformers processor of a V-JEPA 2 (video) or I-JEPA (image) model or config: `eval_transform`'s
    geometry and normalisation, as a processor that loads without hf_jepa.

    Video: `VJEPA2VideoProcessor` turns a (T, H, W, C) clip into `pixel_values_videos` (1, T, C, S, S). Image:
    `BitImageProcessor` turns images into `pixel_values` (B, C, S, S) (S = image_size).
    """
    config = _config_of(model_or_config)
    transform = eval_transform(config)
    mean, std = list(transform.mean), list(transform.std)
    if isinstance(config, VideoJepaConfig):
        processor = VJEPA2VideoProcessor(crop_size=transform.size, image_mean=mean, image_std=std)
        resized = processor.size.shortest_edge
    else:
        processor = BitImageProcessor(size={"shortest_edge": transform.short_side},
                                      crop_size={"height": transform.size, "width": transform.size},
                                      resample=PILImageResampling.BILINEAR, image_mean=mean, image_std=std,
                                      do_convert_rgb=True)
        resized = transform.short_side
    if resized != transform.short_side:  # VJEPA2VideoProcessor fixes its own resize side: it must be ours
        raise ValueError(f"processor short side={resized}: expected {transform.short_side} (the eval transform's)")
    return processor


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
