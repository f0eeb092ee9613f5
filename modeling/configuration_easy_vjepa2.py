"""Configuration of the V-JEPA 2 family (`model_type="easy_vjepa2"`)."""

from __future__ import annotations

from typing import Any

from .configuration_jepa import JepaEncoderConfig, vit_sizes
from .validation import check_bool, check_divisible, check_positive

_PRED = vit_sizes(384, 12, 12, 1536, "predictor_")
# Meta's V-JEPA 2 ViT-L/H/g (RoPE, 16x16x2 tubelets, 256 px, 64 frames) plus CPU-sized presets.
VJEPA2_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(image_size=64, patch_size=8, num_frames=8, **vit_sizes(192, 6, 3, 768),
                 **vit_sizes(96, 3, 3, 384, "predictor_")),
    "small": dict(image_size=128, patch_size=16, num_frames=16, **vit_sizes(384, 12, 6, 1536),
                  **vit_sizes(192, 6, 6, 768, "predictor_")),
    "vit_l": dict(image_size=256, patch_size=16, num_frames=64, **vit_sizes(1024, 24, 16, 4096), **_PRED),
    "vit_h": dict(image_size=256, patch_size=16, num_frames=64, **vit_sizes(1280, 32, 16, 5120), **_PRED),
    "vit_g": dict(image_size=256, patch_size=16, num_frames=64, **vit_sizes(1408, 40, 22, 6144), **_PRED),
}


# Written into every saved config.json so a folder loads with trust_remote_code=True without hf_jepa.
AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_easy_vjepa2.VideoJepaConfig",
    "AutoModel": "modeling_easy_vjepa2.VideoJepaModel",
    "AutoModelForPreTraining": "modeling_easy_vjepa2.VideoJepaForPreTraining",
    "AutoModelForVideoClassification": "modeling_easy_vjepa2.VideoJepaForVideoClassification",
}

# `VideoJepaConfig()`: Meta's ViT-L at 256 px (16 frames), its 384-wide 12-layer predictor and an attentive probe.
VJEPA2_DEFAULTS: dict[str, Any] = dict(image_size=256, **vit_sizes(1024, 24, 16, 4096), **_PRED, probe_type="attentive")


class VideoJepaConfig(JepaEncoderConfig):
    """V-JEPA 2: a ViT over 2x16x16 tubelets with 3-D RoPE (no absolute positions) and a mask-token predictor.

    The other fields are `JepaEncoderConfig` / `JepaConfig` fields (keyword arguments); `VJEPA2_DEFAULTS` gives those
    without a shared default. `image_size` with `patch_size` fixes the grid the predictor assumes when no grid is
    passed (Meta's predictor does the same). Encoder and predictor heads need head_dim >= 6 (3-D RoPE).

    Args:
        tubelet_size: frames per tubelet; a tubelet is `tubelet_size` frames x `patch_size`^2 pixels.
        num_frames: frames per training clip (only the default predictor grid depends on it).
        num_mask_tokens: learnable mask tokens of the predictor, one per mask family (Meta: 10).
        rope_interleave_fix: False keeps Meta's `.repeat(..., 2)` RoPE frequency layout that the released weights
            use; True selects the textbook interleaved layout (vjepa2 PR #15) for models trained with it.
    """

    model_type = "easy_vjepa2"
    presets = VJEPA2_PRESETS
    family_defaults = VJEPA2_DEFAULTS
    default_auto_map = AUTO_MAP

    def __init__(
        self,
        tubelet_size: int = 2,
        num_frames: int = 16,
        num_mask_tokens: int = 10,
        rope_interleave_fix: bool = False,
        **kwargs: Any,
    ) -> None:
        check_positive(tubelet_size=tubelet_size, num_frames=num_frames, num_mask_tokens=num_mask_tokens)
        check_divisible("num_frames", num_frames, "tubelet_size", tubelet_size)
        check_bool(rope_interleave_fix=rope_interleave_fix)
        self.tubelet_size = tubelet_size
        self.num_frames = num_frames
        self.num_mask_tokens = num_mask_tokens
        self.rope_interleave_fix = rope_interleave_fix
        super().__init__(**{**self.family_defaults, **kwargs})
        for name, dim, heads in (("hidden_size", self.hidden_size, self.num_attention_heads),
                                 ("predictor_hidden_size", self.predictor_hidden_size,
                                  self.predictor_num_attention_heads)):
            if dim // heads < 6:
                raise ValueError(f"{name}={dim} with {heads} heads gives head_dim {dim // heads}: 3-D RoPE needs >= 6")

    @property
    def grid(self) -> tuple[int, int, int]:
        """(time, height, width) token grid of a training clip."""
        side = self.image_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side


__all__ = ["VideoJepaConfig", "VJEPA2_PRESETS"]
