"""Frozen encoders for probing: a trained folder / Hub id, a random init (`random:<preset>`) or raw `pixels`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedConfig, PreTrainedModel

from hf_jepa.data.labels import split_features
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_1 import VideoJepa21Config
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaModel
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaModel
from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21Model

__all__ = ["MODALITIES", "FrozenEncoder", "detect_modality", "load_frozen_encoder"]

MODALITIES = ("video", "image")


def detect_modality(name_or_path: str, split: str = "train") -> str:
    """'video' or 'image' from the dataset's columns (a `Video` / `Image` feature, else a `video` / `image` column)."""
    import datasets

    features = split_features(name_or_path, split) or {}
    for feature in features.values():
        if isinstance(feature, datasets.Video):
            return "video"
        if isinstance(feature, datasets.Image):
            return "image"
    for name in ("video", "image"):
        if name in features:
            return name
    raise ValueError(f"{name_or_path} split {split!r}: cannot tell video from image (columns {list(features)}); "
                     "pass the modality explicitly")


@dataclass
class FrozenEncoder:
    """A frozen feature extractor: `encode(pixels) -> (B, N, D)` tokens.

    Attributes:
        name: what was asked for (a path, 'random:<preset>' or 'pixels').
        modality: 'video' (pixels (B, T, C, H, W)) or 'image' (pixels (B, C, H, W)).
        model: the `VideoJepaModel` / `VideoJepa21Model` / `ImageJepaModel` in eval mode, or None for 'pixels'.
        image_size, num_frames: the input the data pipeline produces (num_frames for video only).
        mean, std: input normalisation.
        pixel_size: side of the downsampled frames of the 'pixels' baseline.
    """

    name: str
    modality: str
    model: nn.Module | None
    image_size: int = 64
    num_frames: int = 8
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    pixel_size: int = 8

    @property
    def config(self) -> PreTrainedConfig | None:
        """The encoder's config (None for 'pixels')."""
        return None if self.model is None else self.model.config

    @property
    def hidden_size(self) -> int:
        """Feature width D."""
        if self.model is not None:
            return self.model.config.hidden_size
        frames = self.num_frames if self.modality == "video" else 1
        return frames * 3 * self.pixel_size**2

    @property
    def device(self) -> torch.device:
        """Where the encoder runs."""
        return torch.device("cpu") if self.model is None else next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, pixels: Tensor) -> Tensor:
        """(B, T, C, H, W) video or (B, C, H, W) images -> (B, N, D) frozen features.

        'pixels': every frame area-downsampled to pixel_size^2 and the whole input flattened into ONE token
        (B, 1, T*C*s*s): a linear probe on it is a linear classifier on raw pixels.
        """
        if self.model is not None:
            return self.model(pixels.to(self.device)).last_hidden_state
        frames = pixels.flatten(0, 1) if pixels.dim() == 5 else pixels  # (B*T, C, H, W) or (B, C, H, W)
        small = F.adaptive_avg_pool2d(frames, self.pixel_size)  # (B*T, C, s, s)
        return small.reshape(pixels.shape[0], 1, -1)  # (B, 1, T*C*s*s)


def _encoder_config(config: PreTrainedConfig, spec: str) -> PreTrainedConfig:
    """The V-JEPA 2 / I-JEPA encoder config of a model folder's config (a world model's `encoder_config`)."""
    config = getattr(config, "encoder_config", None) or config
    if not isinstance(config, (VideoJepaConfig, ImageJepaConfig)):
        raise ValueError(f"model={spec!r} is a {type(config).__name__}, expected a V-JEPA 2 or I-JEPA model")
    return config


def _model_class(config: PreTrainedConfig) -> type[PreTrainedModel]:
    """The encoder class of an encoder config (V-JEPA 2.1, V-JEPA 2 or I-JEPA)."""
    if isinstance(config, VideoJepa21Config):
        return VideoJepa21Model
    return VideoJepaModel if isinstance(config, VideoJepaConfig) else ImageJepaModel


def load_frozen_encoder(
    spec: str,
    *,
    modality: str | None = None,
    seed: int = 0,
    pixel_size: int | None = None,
    device: str | torch.device | None = None,
) -> FrozenEncoder:
    """A frozen encoder from a folder / Hub id, `random:<preset>` (random init, the SSL baseline) or `pixels`.

    A folder may hold a pretraining model (its EMA target encoder loads), an encoder, or a classifier. `modality`
    ('video' | 'image') is needed for `random:` and `pixels`; for a folder it is read from the config and checked.
    `pixel_size` (pixels only) defaults to 8 for video and 16 for images. `random:<folder>` initialises the
    architecture of a model folder (its encoder config: patch size, frames, widths) afresh: the random-init baseline
    of exactly that model.
    """
    from transformers import AutoConfig

    if spec == "pixels" or spec.startswith("random:"):
        if modality not in MODALITIES:
            raise ValueError(f"model={spec!r} needs modality in {list(MODALITIES)}, got {modality!r}")
    if spec == "pixels":
        size = pixel_size or (8 if modality == "video" else 16)
        return FrozenEncoder(spec, modality, None, pixel_size=size)
    if spec.startswith("random:"):
        preset = spec.split(":", 1)[1]
        if (Path(preset) / "config.json").is_file():  # a model folder: its architecture, freshly initialised
            config = _encoder_config(AutoConfig.from_pretrained(preset), spec)
        else:
            config = (VideoJepaConfig if modality == "video" else ImageJepaConfig).from_preset(preset)
        if not isinstance(config, VideoJepa21Config) and modality != (
                "video" if isinstance(config, VideoJepaConfig) else "image"):
            raise ValueError(f"model={spec!r} is not a {modality} model but the dataset holds {modality}s")
        torch.manual_seed(seed)
        model: PreTrainedModel = _model_class(config)(config)
    else:
        config = AutoConfig.from_pretrained(spec)
        if isinstance(config, VideoJepa21Config):  # V-JEPA 2.1 encodes videos and images
            model_modality, model_cls = modality or "video", VideoJepa21Model
        elif isinstance(config, VideoJepaConfig):
            model_modality, model_cls = "video", VideoJepaModel
        elif isinstance(config, ImageJepaConfig):
            model_modality, model_cls = "image", ImageJepaModel
        else:
            raise ValueError(f"model={spec!r} is a {type(config).__name__}, expected a V-JEPA 2 or I-JEPA model")
        if modality is not None and modality != model_modality:
            raise ValueError(f"model={spec!r} is a {model_modality} model but the dataset holds {modality}s")
        modality = model_modality
        model = model_cls.from_pretrained(spec)
    model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval().requires_grad_(False)
    cfg = model.config
    return FrozenEncoder(spec, modality, model, image_size=cfg.image_size,
                         num_frames=getattr(cfg, "num_frames", 1), mean=tuple(cfg.image_mean),
                         std=tuple(cfg.image_std))
