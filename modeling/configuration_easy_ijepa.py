"""Configuration of the I-JEPA family (`model_type="easy_ijepa"`)."""

from __future__ import annotations

from typing import Any

from .configuration_jepa import JepaEncoderConfig, vit_sizes

# Sizes of the published I-JEPA models (the architecture of each released checkpoint: Meta's predictor takes the
# encoder's head count, `init_model(..., num_heads=encoder.num_heads)`; ViT-g/16's predictor is 16 deep,
# in22k_vitg16_ep44.yaml) plus CPU-sized presets. `intermediate_size` is stored, not derived.
IJEPA_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(image_size=64, patch_size=8, **vit_sizes(192, 6, 3, 768), **vit_sizes(96, 3, 3, 384, "predictor_")),
    "small": dict(image_size=128, patch_size=16, **vit_sizes(384, 12, 6, 1536),
                  **vit_sizes(192, 6, 6, 768, "predictor_")),
    # IN-1K ViT-H/14 224 px (in1k_vith14_ep300) and IN-22K ViT-H/14 (in22k_vith14_ep66)
    "vit_h14": dict(image_size=224, patch_size=14, **vit_sizes(1280, 32, 16, 5120),
                    **vit_sizes(384, 12, 16, 1536, "predictor_")),
    # IN-1K ViT-H/16 448 px (in1k_vith16-448_ep300)
    "vit_h16_448": dict(image_size=448, patch_size=16, **vit_sizes(1280, 32, 16, 5120),
                        **vit_sizes(384, 12, 16, 1536, "predictor_")),
    # IN-22K ViT-g/16 (in22k_vitg16_ep44)
    "vit_g16": dict(image_size=224, patch_size=16, **vit_sizes(1408, 40, 16, 6144),
                    **vit_sizes(384, 16, 16, 1536, "predictor_")),
}


# Written into every saved config.json so a folder loads with trust_remote_code=True without hf_jepa.
AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_easy_ijepa.ImageJepaConfig",
    "AutoModel": "modeling_easy_ijepa.ImageJepaModel",
    "AutoModelForPreTraining": "modeling_easy_ijepa.ImageJepaForPreTraining",
    "AutoModelForImageClassification": "modeling_easy_ijepa.ImageJepaForImageClassification",
}

# `ImageJepaConfig()`: a ViT-B/16 at 224 px, a 384-wide 6-layer predictor and a linear probe.
IJEPA_DEFAULTS: dict[str, Any] = dict(image_size=224, **vit_sizes(768, 12, 12, 3072),
                                      **vit_sizes(384, 6, 12, 1536, "predictor_"), probe_type="linear")


class ImageJepaConfig(JepaEncoderConfig):
    """I-JEPA: a ViT with fixed 2-D sin-cos positions and no CLS token, plus its mask-token predictor.

    Every field is a `JepaEncoderConfig` / `JepaConfig` field (keyword arguments); `IJEPA_DEFAULTS` gives those
    without a shared default. `image_size` sets the stored position table (image_size/patch)^2 x D, and the encoder
    and predictor widths must be multiples of 4 (2-D sin-cos positions split the channels in four).
    """

    model_type = "easy_ijepa"
    presets = IJEPA_PRESETS
    family_defaults = IJEPA_DEFAULTS
    default_auto_map = AUTO_MAP

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**self.family_defaults, **kwargs})
        if self.hidden_size % 4 != 0 or self.predictor_hidden_size % 4 != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size}, predictor_hidden_size={self.predictor_hidden_size}: expected "
                "multiples of 4 (2-D sin-cos positions split the channels in four)"
            )

    @property
    def grid_size(self) -> int:
        """Patches per side at `image_size` (not stored: a pure function of two stored fields)."""
        return self.image_size // self.patch_size


__all__ = ["ImageJepaConfig", "IJEPA_PRESETS"]
