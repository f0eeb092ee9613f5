"""Configuration of the I-JEPA family (`model_type="easy_ijepa"`)."""

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

# Sizes of the published I-JEPA models plus CPU-sized presets. `intermediate_size` is stored, not derived.
IJEPA_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(image_size=64, patch_size=8, hidden_size=192, num_hidden_layers=6, num_attention_heads=3,
                 intermediate_size=768, predictor_hidden_size=96, predictor_num_hidden_layers=3,
                 predictor_num_attention_heads=3, predictor_intermediate_size=384),
    "small": dict(image_size=128, patch_size=16, hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                  intermediate_size=1536, predictor_hidden_size=192, predictor_num_hidden_layers=6,
                  predictor_num_attention_heads=6, predictor_intermediate_size=768),
    "vit_h14": dict(image_size=224, patch_size=14, hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                    intermediate_size=5120, predictor_hidden_size=384, predictor_num_hidden_layers=12,
                    predictor_num_attention_heads=12, predictor_intermediate_size=1536),
    "vit_g16": dict(image_size=224, patch_size=16, hidden_size=1408, num_hidden_layers=40, num_attention_heads=16,
                    intermediate_size=6144, predictor_hidden_size=384, predictor_num_hidden_layers=12,
                    predictor_num_attention_heads=12, predictor_intermediate_size=1536),
}


# Written into every saved config.json so a folder loads with trust_remote_code=True without hf_jepa.
AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_easy_ijepa.ImageJepaConfig",
    "AutoModel": "modeling_easy_ijepa.ImageJepaModel",
    "AutoModelForPreTraining": "modeling_easy_ijepa.ImageJepaForPreTraining",
    "AutoModelForImageClassification": "modeling_easy_ijepa.ImageJepaForImageClassification",
}


class ImageJepaConfig(PreTrainedConfig):
    """I-JEPA: a ViT with fixed 2-D sin-cos positions and no CLS token, plus its mask-token predictor.

    Args:
        image_size: training resolution (square); sets the stored position table (image_size/patch)^2 x D.
        patch_size: patch side in pixels.
        num_channels: input channels.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder ViT sizes.
        predictor_hidden_size, predictor_num_hidden_layers, predictor_num_attention_heads,
        predictor_intermediate_size: predictor ViT sizes.
        qkv_bias: bias on the fused qkv projection.
        layer_norm_eps: LayerNorm epsilon (Meta: 1e-6).
        drop_path_rate: stochastic depth of the last block (linear rule).
        initializer_range: std of the truncated-normal init.
        use_ema_target: keep an EMA target encoder (Meta's objective); False for SIGReg (no EMA).
        probe_type: classification head of the `*For*Classification` model: 'attentive' (Meta's attentive probe)
            or 'linear' (LayerNorm + linear on mean-pooled tokens).
        probe_num_queries: learnable query tokens of the attentive probe (their outputs are averaged).
        probe_num_self_attention_layers: self-attention layers before the cross-attention (Meta's probe
            `depth` - 1; transformers' `num_pooler_layers`; Meta's SSv2 probes use 3).
        probe_num_attention_heads: attention heads of the probe; None: `num_attention_heads` (stored resolved).
        probe_intermediate_size: probe MLP width; None: 4 * hidden_size (stored resolved).
        probe_layer_norm_eps: LayerNorm epsilon inside the probe.
        freeze_encoder: keep the encoder frozen (no gradients, eval mode) in the classification model.
        image_mean, image_std: normalisation the weights were trained with (used by processors).
    """

    model_type = "easy_ijepa"
    _auto_class = "AutoConfig"

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        num_channels: int = 3,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        predictor_hidden_size: int = 384,
        predictor_num_hidden_layers: int = 6,
        predictor_num_attention_heads: int = 12,
        predictor_intermediate_size: int = 1536,
        qkv_bias: bool = True,
        layer_norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
        initializer_range: float = 0.02,
        use_ema_target: bool = True,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        probe_type: str = "linear",
        probe_num_queries: int = 1,
        probe_num_self_attention_layers: int = 0,
        probe_num_attention_heads: int | None = None,
        probe_intermediate_size: int | None = None,
        probe_layer_norm_eps: float = 1e-6,
        freeze_encoder: bool = True,
        **kwargs: Any,
    ) -> None:
        check_positive(image_size=image_size, patch_size=patch_size, num_channels=num_channels,
                       hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                       num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
                       predictor_hidden_size=predictor_hidden_size,
                       predictor_num_hidden_layers=predictor_num_hidden_layers,
                       predictor_num_attention_heads=predictor_num_attention_heads,
                       predictor_intermediate_size=predictor_intermediate_size)
        check_divisible("image_size", image_size, "patch_size", patch_size)
        check_divisible("hidden_size", hidden_size, "num_attention_heads", num_attention_heads)
        check_divisible("predictor_hidden_size", predictor_hidden_size, "predictor_num_attention_heads",
                        predictor_num_attention_heads)
        if hidden_size % 4 != 0 or predictor_hidden_size % 4 != 0:
            raise ValueError(
                f"hidden_size={hidden_size}, predictor_hidden_size={predictor_hidden_size}: expected multiples of 4 "
                "(2-D sin-cos positions split the channels in four)"
            )
        check_range("drop_path_rate", drop_path_rate, 0.0, 1.0)
        check_bool(qkv_bias=qkv_bias, use_ema_target=use_ema_target)
        check_positive_float(layer_norm_eps=layer_norm_eps, initializer_range=initializer_range)
        check_number_list(image_mean=image_mean, image_std=image_std)
        probe = probe_fields(
            hidden_size=hidden_size, num_attention_heads=num_attention_heads, probe_type=probe_type,
            probe_num_queries=probe_num_queries, probe_num_self_attention_layers=probe_num_self_attention_layers,
            probe_num_attention_heads=probe_num_attention_heads, probe_intermediate_size=probe_intermediate_size,
            probe_layer_norm_eps=probe_layer_norm_eps, freeze_encoder=freeze_encoder)
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.predictor_hidden_size = predictor_hidden_size
        self.predictor_num_hidden_layers = predictor_num_hidden_layers
        self.predictor_num_attention_heads = predictor_num_attention_heads
        self.predictor_intermediate_size = predictor_intermediate_size
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
    def grid_size(self) -> int:
        """Patches per side at `image_size` (not stored: a pure function of two stored fields)."""
        return self.image_size // self.patch_size

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ImageJepaConfig:
        """A config from `IJEPA_PRESETS[name]` ('tiny', 'small', 'vit_h14', 'vit_g16') with overrides."""
        if name not in IJEPA_PRESETS:
            raise ValueError(f"preset={name!r}: expected one of {sorted(IJEPA_PRESETS)}")
        return cls(**{**IJEPA_PRESETS[name], **overrides})


__all__ = ["ImageJepaConfig", "IJEPA_PRESETS"]
