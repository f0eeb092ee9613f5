"""Bases of the family configs: the fields and checks the I-JEPA, V-JEPA 2 and V-JEPA 2-AC configs share.

`JepaConfig` holds what every family has (predictor sizes, qkv bias, LayerNorm epsilon, stochastic depth, init std,
presets, the `auto_map` written into config.json); `JepaEncoderConfig` adds the ViT encoder, the EMA target switch
and the classification probe of the two encoder families. A family config sets `model_type`, `presets`,
`default_auto_map` and `family_defaults` (the values of `Config()` for the fields without a shared default) and
validates only its own fields.

This file imports only transformers and its siblings: it travels to the Hub beside the weights (remote code).
"""

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


def vit_sizes(hidden_size: int, num_hidden_layers: int, num_attention_heads: int, intermediate_size: int,
              prefix: str = "") -> dict[str, int]:
    """The four size fields of a ViT as config values: `prefix=""` the encoder's, `"predictor_"` the predictor's."""
    return {f"{prefix}hidden_size": hidden_size, f"{prefix}num_hidden_layers": num_hidden_layers,
            f"{prefix}num_attention_heads": num_attention_heads, f"{prefix}intermediate_size": intermediate_size}


class JepaConfig(PreTrainedConfig):
    """Fields of every JEPA family.

    Args:
        predictor_hidden_size, predictor_num_hidden_layers, predictor_num_attention_heads,
        predictor_intermediate_size: predictor ViT sizes (defaults: the family's `family_defaults`).
        qkv_bias: bias on the fused qkv projections.
        layer_norm_eps: LayerNorm epsilon (Meta: 1e-6).
        drop_path_rate: stochastic depth of the last block (linear rule).
        initializer_range: std of the truncated-normal init.
        kwargs: `PreTrainedConfig` fields; unknown keys are kept and logged as a WARNING.
    """

    _auto_class = "AutoConfig"
    # Set by each family (class attributes, not annotated: transformers turns annotated ones into config fields).
    presets = {}  # name -> field values for `from_preset`
    family_defaults = {}  # values of `Config()` for the fields without a shared default
    default_auto_map = {}  # written into every saved config.json so a folder loads with trust_remote_code=True

    def __init__(
        self,
        *,
        predictor_hidden_size: int,
        predictor_num_hidden_layers: int,
        predictor_num_attention_heads: int,
        predictor_intermediate_size: int,
        qkv_bias: bool = True,
        layer_norm_eps: float = 1e-6,
        drop_path_rate: float = 0.0,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ) -> None:
        check_positive(predictor_hidden_size=predictor_hidden_size,
                       predictor_num_hidden_layers=predictor_num_hidden_layers,
                       predictor_num_attention_heads=predictor_num_attention_heads,
                       predictor_intermediate_size=predictor_intermediate_size)
        check_divisible("predictor_hidden_size", predictor_hidden_size, "predictor_num_attention_heads",
                        predictor_num_attention_heads)
        check_range("drop_path_rate", drop_path_rate, 0.0, 1.0)
        check_bool(qkv_bias=qkv_bias)
        check_positive_float(layer_norm_eps=layer_norm_eps, initializer_range=initializer_range)
        self.predictor_hidden_size = predictor_hidden_size
        self.predictor_num_hidden_layers = predictor_num_hidden_layers
        self.predictor_num_attention_heads = predictor_num_attention_heads
        self.predictor_intermediate_size = predictor_intermediate_size
        self.qkv_bias = qkv_bias
        self.layer_norm_eps = layer_norm_eps
        self.drop_path_rate = drop_path_rate
        self.initializer_range = initializer_range
        warn_unknown_fields(type(self), kwargs)
        kwargs.setdefault("auto_map", dict(self.default_auto_map))
        super().__init__(**kwargs)

    @classmethod
    def preset_values(cls, name: str) -> dict[str, Any]:
        """A copy of `cls.presets[name]`; a ValueError names the known presets."""
        if name not in cls.presets:
            raise ValueError(f"preset={name!r}: expected one of {sorted(cls.presets)}")
        return dict(cls.presets[name])

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> JepaConfig:
        """A config from `cls.presets[name]` with overrides."""
        return cls(**{**cls.preset_values(name), **overrides})


class JepaEncoderConfig(JepaConfig):
    """Fields of the encoder families (I-JEPA, V-JEPA 2): a ViT, its EMA target and a classification probe.

    Args:
        image_size: training resolution (square).
        patch_size: patch side in pixels.
        num_channels: input channels.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: encoder ViT sizes.
        use_ema_target: keep an EMA target encoder (Meta's objective); False for SIGReg (no EMA).
        image_mean, image_std: normalisation the weights were trained with (used by processors; default: ImageNet).
        probe_type: classification head of the `*For*Classification` model: 'attentive' (Meta's attentive probe)
            or 'linear' (LayerNorm + linear on mean-pooled tokens).
        probe_num_queries: learnable query tokens of the attentive probe (their outputs are averaged).
        probe_num_self_attention_layers: self-attention layers before the cross-attention (Meta's probe
            `depth` - 1; transformers' `num_pooler_layers`; Meta's SSv2 probes use 3).
        probe_num_attention_heads: attention heads of the probe; None: `num_attention_heads` (stored resolved).
        probe_intermediate_size: probe MLP width; None: 4 * hidden_size (stored resolved).
        probe_layer_norm_eps: LayerNorm epsilon inside the probe.
        freeze_encoder: keep the encoder frozen (no gradients, eval mode) in the classification model.
        kwargs: the `JepaConfig` fields.
    """

    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int = 16,
        num_channels: int = 3,
        hidden_size: int,
        num_hidden_layers: int,
        num_attention_heads: int,
        intermediate_size: int,
        use_ema_target: bool = True,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        probe_type: str,
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
                       num_attention_heads=num_attention_heads, intermediate_size=intermediate_size)
        check_divisible("image_size", image_size, "patch_size", patch_size)
        check_divisible("hidden_size", hidden_size, "num_attention_heads", num_attention_heads)
        check_bool(use_ema_target=use_ema_target)
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
        self.use_ema_target = use_ema_target
        self.image_mean = list(image_mean) if image_mean is not None else [0.485, 0.456, 0.406]
        self.image_std = list(image_std) if image_std is not None else [0.229, 0.224, 0.225]
        for name, value in probe.items():
            setattr(self, name, value)
        super().__init__(**kwargs)


__all__ = ["JepaConfig", "JepaEncoderConfig", "vit_sizes"]
