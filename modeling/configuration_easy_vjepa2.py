"""Configuration of the V-JEPA 2 family (`model_type="easy_vjepa2"`)."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

from .validation import (
    check_bool,
    check_divisible,
    check_number_list,
    check_positive,
    check_positive_float,
    check_range,
    probe_fields,
    warn_unknown_fields,
)

_PRED = dict(predictor_hidden_size=384, predictor_num_hidden_layers=12, predictor_num_attention_heads=12,
             predictor_intermediate_size=1536)
# Meta's V-JEPA 2 ViT-L/H/g (RoPE, 16x16x2 tubelets, 256 px, 64 frames) plus CPU-sized presets.
VJEPA2_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(image_size=64, patch_size=8, num_frames=8, hidden_size=192, num_hidden_layers=6,
                 num_attention_heads=3, intermediate_size=768, predictor_hidden_size=96,
                 predictor_num_hidden_layers=3, predictor_num_attention_heads=3, predictor_intermediate_size=384),
    "small": dict(image_size=128, patch_size=16, num_frames=16, hidden_size=384, num_hidden_layers=12,
                  num_attention_heads=6, intermediate_size=1536, predictor_hidden_size=192,
                  predictor_num_hidden_layers=6, predictor_num_attention_heads=6, predictor_intermediate_size=768),
    "vit_l": dict(image_size=256, patch_size=16, num_frames=64, hidden_size=1024, num_hidden_layers=24,
                  num_attention_heads=16, intermediate_size=4096, **_PRED),
    "vit_h": dict(image_size=256, patch_size=16, num_frames=64, hidden_size=1280, num_hidden_layers=32,
                  num_attention_heads=16, intermediate_size=5120, **_PRED),
    "vit_g": dict(image_size=256, patch_size=16, num_frames=64, hidden_size=1408, num_hidden_layers=40,
                  num_attention_heads=22, intermediate_size=6144, **_PRED),
}


# Written into every saved config.json so a folder loads with trust_remote_code=True without hf_jepa.
AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_easy_vjepa2.VideoJepaConfig",
    "AutoModel": "modeling_easy_vjepa2.VideoJepaModel",
    "AutoModelForPreTraining": "modeling_easy_vjepa2.VideoJepaForPreTraining",
    "AutoModelForVideoClassification": "modeling_easy_vjepa2.VideoJepaForVideoClassification",
}


class VideoJepaConfig(PreTrainedConfig):
    """V-JEPA 2: a ViT over 2x16x16 tubelets with 3-D RoPE (no absolute positions) and a mask-token predictor.

    Args:
        image_size: training crop (square); with `patch_size` it fixes the grid the predictor assumes when no grid
            is passed (Meta's predictor does the same).
        patch_size, tubelet_size: tubelet is `tubelet_size` frames x `patch_size`^2 pixels.
        num_frames: frames per training clip (only the default predictor grid depends on it).
        num_channels: input channels.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder sizes.
        predictor_*: predictor sizes.
        num_mask_tokens: learnable mask tokens of the predictor, one per mask family (Meta: 10).
        rope_interleave_fix: False keeps Meta's `.repeat(..., 2)` RoPE frequency layout that the released weights
            use; True selects the textbook interleaved layout (vjepa2 PR #15) for models trained with it.
        qkv_bias, layer_norm_eps, drop_path_rate, initializer_range: as in Meta's ViT.
        use_ema_target: keep an EMA target encoder (Meta); False for SIGReg.
        probe_type: classification head of the `*For*Classification` model: 'attentive' (Meta's attentive probe)
            or 'linear' (LayerNorm + linear on mean-pooled tokens).
        probe_num_queries: learnable query tokens of the attentive probe (their outputs are averaged).
        probe_num_self_attention_layers: self-attention layers before the cross-attention (Meta's probe
            `depth` - 1; transformers' `num_pooler_layers`; Meta's SSv2 probes use 3).
        probe_num_attention_heads: attention heads of the probe; None: `num_attention_heads` (stored resolved).
        probe_intermediate_size: probe MLP width; None: 4 * hidden_size (stored resolved).
        probe_layer_norm_eps: LayerNorm epsilon inside the probe.
        freeze_encoder: keep the encoder frozen (no gradients, eval mode) in the classification model.
        image_mean, image_std: normalisation the weights were trained with.
    """

    model_type = "easy_vjepa2"
    _auto_class = "AutoConfig"

    def __init__(
        self,
        image_size: int = 256,
        patch_size: int = 16,
        tubelet_size: int = 2,
        num_frames: int = 16,
        num_channels: int = 3,
        hidden_size: int = 1024,
        num_hidden_layers: int = 24,
        num_attention_heads: int = 16,
        intermediate_size: int = 4096,
        predictor_hidden_size: int = 384,
        predictor_num_hidden_layers: int = 12,
        predictor_num_attention_heads: int = 12,
        predictor_intermediate_size: int = 1536,
        num_mask_tokens: int = 10,
        rope_interleave_fix: bool = False,
        qkv_bias: bool = True,
        layer_norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
        initializer_range: float = 0.02,
        use_ema_target: bool = True,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        probe_type: str = "attentive",
        probe_num_queries: int = 1,
        probe_num_self_attention_layers: int = 0,
        probe_num_attention_heads: int | None = None,
        probe_intermediate_size: int | None = None,
        probe_layer_norm_eps: float = 1e-6,
        freeze_encoder: bool = True,
        **kwargs: Any,
    ) -> None:
        check_positive(image_size=image_size, patch_size=patch_size, tubelet_size=tubelet_size,
                       num_frames=num_frames, num_channels=num_channels, hidden_size=hidden_size,
                       num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                       intermediate_size=intermediate_size, predictor_hidden_size=predictor_hidden_size,
                       predictor_num_hidden_layers=predictor_num_hidden_layers,
                       predictor_num_attention_heads=predictor_num_attention_heads,
                       predictor_intermediate_size=predictor_intermediate_size, num_mask_tokens=num_mask_tokens)
        check_divisible("image_size", image_size, "patch_size", patch_size)
        check_divisible("num_frames", num_frames, "tubelet_size", tubelet_size)
        check_divisible("hidden_size", hidden_size, "num_attention_heads", num_attention_heads)
        check_divisible("predictor_hidden_size", predictor_hidden_size, "predictor_num_attention_heads",
                        predictor_num_attention_heads)
        for name, dim, heads in (("hidden_size", hidden_size, num_attention_heads),
                                 ("predictor_hidden_size", predictor_hidden_size, predictor_num_attention_heads)):
            if dim // heads < 6:
                raise ValueError(f"{name}={dim} with {heads} heads gives head_dim {dim // heads}: 3-D RoPE needs >= 6")
        check_range("drop_path_rate", drop_path_rate, 0.0, 1.0)
        check_bool(rope_interleave_fix=rope_interleave_fix, qkv_bias=qkv_bias, use_ema_target=use_ema_target)
        check_positive_float(layer_norm_eps=layer_norm_eps, initializer_range=initializer_range)
        check_number_list(image_mean=image_mean, image_std=image_std)
        probe = probe_fields(
            hidden_size=hidden_size, num_attention_heads=num_attention_heads, probe_type=probe_type,
            probe_num_queries=probe_num_queries, probe_num_self_attention_layers=probe_num_self_attention_layers,
            probe_num_attention_heads=probe_num_attention_heads, probe_intermediate_size=probe_intermediate_size,
            probe_layer_norm_eps=probe_layer_norm_eps, freeze_encoder=freeze_encoder)
        self.image_size = image_size
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.num_frames = num_frames
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.predictor_hidden_size = predictor_hidden_size
        self.predictor_num_hidden_layers = predictor_num_hidden_layers
        self.predictor_num_attention_heads = predictor_num_attention_heads
        self.predictor_intermediate_size = predictor_intermediate_size
        self.num_mask_tokens = num_mask_tokens
        self.rope_interleave_fix = rope_interleave_fix
        self.qkv_bias = qkv_bias
        self.layer_norm_eps = layer_norm_eps
        self.drop_path_rate = drop_path_rate
        self.initializer_range = initializer_range
        self.use_ema_target = use_ema_target
        self.image_mean = list(image_mean) if image_mean is not None else [0.485, 0.456, 0.406]
        self.image_std = list(image_std) if image_std is not None else [0.229, 0.224, 0.225]
        for name, value in probe.items():
            setattr(self, name, value)
        warn_unknown_fields(type(self), kwargs)
        kwargs.setdefault("auto_map", dict(AUTO_MAP))
        super().__init__(**kwargs)

    @property
    def grid(self) -> tuple[int, int, int]:
        """(time, height, width) token grid of a training clip."""
        side = self.image_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> VideoJepaConfig:
        """A config from `VJEPA2_PRESETS[name]` ('tiny', 'small', 'vit_l', 'vit_h', 'vit_g') with overrides."""
        if name not in VJEPA2_PRESETS:
            raise ValueError(f"preset={name!r}: expected one of {sorted(VJEPA2_PRESETS)}")
        return cls(**{**VJEPA2_PRESETS[name], **overrides})


__all__ = ["VideoJepaConfig", "VJEPA2_PRESETS"]
