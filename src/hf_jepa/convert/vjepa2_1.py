"""Meta's V-JEPA 2.1 checkpoints (released and training layouts) -> `VideoJepa21ForPreTraining`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hf_jepa.convert.checkpoint import CheckpointError, _count_blocks, _require, _require_dims, _select, load_exact
from hf_jepa.modeling.configuration_easy_vjepa2_1 import HIERARCHICAL_LAYERS, VJEPA2_1_PRESETS, VideoJepa21Config
from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21ForPreTraining

logger = logging.getLogger(__name__)

# Heads of the widths of Meta's V-JEPA 2.1 encoders (vit_base, vit_large, vit_giant_xformers, vit_gigantic_xformers).
_HEADS_2_1 = {768: 12, 1024: 16, 1408: 22, 1664: 26}


def _vjepa2_1_encoder_key(ckpt: dict[str, Any], path: str | Path, encoder_key: str) -> str:
    """The exported encoder: `encoder_key` if present, else the released files' `ema_encoder` (ViT-B / ViT-L) or
    `target_encoder` (ViT-g / ViT-G)."""
    for key in (encoder_key, "ema_encoder", "target_encoder"):
        if isinstance(ckpt.get(key), dict):
            return key
    raise CheckpointError(f"checkpoint {path}: unknown layout, expected an 'ema_encoder' or 'target_encoder' state "
                          f"dict (Meta's released V-JEPA 2.1 files), found keys {sorted(ckpt)[:8]}")


def _vjepa2_1_encoder_sizes(sd: dict[str, Tensor], overrides: dict[str, Any]) -> dict[str, Any]:
    """V-JEPA 2.1 encoder config fields read from Meta-layout tensors (2.0 checkpoints are named as such)."""
    if "norm.weight" in sd and not any(k.startswith("norms_block.") for k in sd):
        raise CheckpointError("vjepa2_1 encoder: has a single final norm (norm.weight) and no norms_block.* keys: "
                              "this is a V-JEPA 2 (2.0) checkpoint; expected V-JEPA 2.1 (convert it with --family "
                              "vjepa2)")
    _require(sd, ["patch_embed.proj.weight", "blocks.0.mlp.fc1.weight", "norms_block.0.weight"], "vjepa2_1 encoder")
    _require_dims(sd, {"patch_embed.proj.weight": 5, "blocks.0.mlp.fc1.weight": 2}, "vjepa2_1 encoder")
    proj = sd["patch_embed.proj.weight"]  # (D, C, tubelet, p, p)
    width, depth = proj.shape[0], _count_blocks(sd, "blocks.")
    levels = _count_blocks(sd, "norms_block.")
    if "num_attention_heads" in overrides:
        heads = int(overrides["num_attention_heads"])
    elif width in _HEADS_2_1:
        heads = _HEADS_2_1[width]
    else:
        raise CheckpointError(f"cannot infer num_attention_heads for width {width} (Meta's V-JEPA 2.1 widths: "
                              f"{sorted(_HEADS_2_1)}); pass --config_overrides '{{\"num_attention_heads\": N}}'")
    sizes = dict(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads, patch_size=proj.shape[-1],
                 num_channels=proj.shape[1], tubelet_size=proj.shape[2],
                 intermediate_size=sd["blocks.0.mlp.fc1.weight"].shape[0], qkv_bias="blocks.0.attn.qkv.bias" in sd,
                 image_patch_embedding="patch_embed_img.proj.weight" in sd,
                 modality_embedding="video_mod_embed" in sd)
    if "hierarchical_layers" not in overrides and (depth not in HIERARCHICAL_LAYERS or levels != 4):
        raise CheckpointError(f"vjepa2_1 encoder: {depth} blocks with {levels} norms_block levels; Meta's level table "
                              f"covers 4 levels at depths {sorted(HIERARCHICAL_LAYERS)}: pass --config_overrides "
                              "'{\"hierarchical_layers\": [...]}'")
    return sizes


def _vjepa2_1_predictor(sd: dict[str, Tensor], width: int, overrides: dict[str, Any]
                        ) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Predictor config fields and our state dict (mask_tokens.i (1, 1, d) stacked into (n, d))."""
    one_level = "predictor_embed.weight" in sd
    embed = "predictor_embed.weight" if one_level else "predictor_embed.2.weight"
    _require(sd, [embed, "predictor_blocks.0.mlp.fc1.weight", "predictor_proj.weight", "mask_tokens.0"],
             "vjepa2_1 predictor")
    d = sd[embed].shape[0]
    levels = 1 if one_level else sd["predictor_embed.0.weight"].shape[1] // width
    if "predictor_num_attention_heads" in overrides:
        heads = int(overrides["predictor_num_attention_heads"])
    elif d % 12 == 0:
        heads = 12  # Meta's V-JEPA 2.1 predictors: 12 heads at width 384
    else:
        raise CheckpointError(f"cannot infer predictor_num_attention_heads for width {d}; pass it in overrides")
    n_tokens = len([k for k in sd if k.startswith("mask_tokens.")])
    gaps = [f"mask_tokens.{i}" for i in range(n_tokens) if f"mask_tokens.{i}" not in sd]
    if gaps:
        raise CheckpointError(f"vjepa2_1 predictor: missing keys {gaps} (expected mask_tokens.0 .. {n_tokens - 1})")
    fields = dict(predictor_hidden_size=d, predictor_num_hidden_layers=_count_blocks(sd, "predictor_blocks."),
                  predictor_num_attention_heads=heads,
                  predictor_intermediate_size=sd["predictor_blocks.0.mlp.fc1.weight"].shape[0],
                  predictor_num_levels=levels, predictor_output_size=sd["predictor_proj.weight"].shape[0] // levels,
                  predictor_context_projection="predictor_proj_context.weight" in sd, num_mask_tokens=n_tokens)
    state = {k: v for k, v in sd.items() if not k.startswith("mask_tokens.")}
    state["mask_tokens"] = torch.stack([sd[f"mask_tokens.{i}"].reshape(-1) for i in range(n_tokens)])  # (n, d)
    return fields, state


def vjepa2_1_preset_for(fields: dict[str, Any]) -> str | None:
    """The released preset whose architecture fields all equal `fields` (read from a checkpoint), or None."""
    for name, preset in VJEPA2_1_PRESETS.items():
        if name != "tiny" and all(fields.get(k, v) == v for k, v in preset.items()
                                  if k not in ("image_size", "num_frames")):
            return name
    return None


def convert_vjepa2_1(ckpt: dict[str, Any], path: str | Path, *, overrides: dict[str, Any],
                     encoder_key: str = "target_encoder") -> VideoJepa21ForPreTraining:
    """A Meta V-JEPA 2.1 checkpoint (released `{ema_encoder | target_encoder, predictor}` files or the training
    layout) -> `VideoJepa21ForPreTraining`, loaded strictly (a missing or extra key is an error naming it).

    The preset is picked from the tensor shapes when they match one of Meta's four released models (its 384 px,
    64-frame grid); otherwise the config is read from the shapes, with `overrides` for what they cannot tell.
    """
    key = _vjepa2_1_encoder_key(ckpt, path, encoder_key)
    encoder_sd = _select(ckpt, key, path)
    enc_fields = _vjepa2_1_encoder_sizes(encoder_sd, overrides)
    predictor_sd = _select(ckpt, "predictor", path)
    pred_fields, pred_state = _vjepa2_1_predictor(predictor_sd, enc_fields["hidden_size"], overrides)
    fields = {**enc_fields, **pred_fields}
    preset = vjepa2_1_preset_for(fields)
    if preset is not None:
        logger.info("%s: tensor shapes match Meta's released V-JEPA 2.1 %s", path, preset)
        fields = {**VideoJepa21Config.preset_values(preset), **fields}
    config = VideoJepa21Config(**{**fields, **overrides})
    model = VideoJepa21ForPreTraining(config)
    context_sd = _select(ckpt, "encoder", path) if isinstance(ckpt.get("encoder"), dict) else encoder_sd
    load_exact(model.encoder, context_sd, "vjepa2_1 context encoder")
    load_exact(model.target_encoder, encoder_sd, f"vjepa2_1 {key}")
    load_exact(model.predictor, pred_state, "vjepa2_1 predictor")
    return model.eval()
