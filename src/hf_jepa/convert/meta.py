"""Meta's I-JEPA, V-JEPA 2 and V-JEPA 2-AC checkpoints -> hf_jepa models, sized from their tensors; and
`convert_checkpoint`, the one entry point for every source (Meta files and transformers folders)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedModel

from hf_jepa.convert.checkpoint import (
    FAMILIES,
    CheckpointError,
    _count_blocks,
    _heads,
    _require,
    _require_dims,
    _select,
    load_exact,
    load_meta_checkpoint,
)
from hf_jepa.convert.from_transformers import convert_transformers_model
from hf_jepa.convert.vjepa2_1 import convert_vjepa2_1
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from hf_jepa.modeling.validation import config_fields

logger = logging.getLogger(__name__)

def _encoder_sizes(sd: dict[str, Tensor], family: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Encoder config fields read from Meta-layout encoder tensors."""
    if family != "ijepa" and any(k.startswith("norms_block.") for k in sd):
        raise CheckpointError(f"{family} encoder: has norms_block.* keys (per-level norms) and no single final norm: "
                              "this is a V-JEPA 2.1 checkpoint; expected a V-JEPA 2 one (convert it with "
                              "--family vjepa2_1)")
    _require(sd, ["patch_embed.proj.weight", "blocks.0.mlp.fc1.weight", "norm.weight"]
             + (["pos_embed"] if family == "ijepa" else []), f"{family} encoder")
    _require_dims(sd, {"blocks.0.mlp.fc1.weight": 2, **({"pos_embed": 3} if family == "ijepa" else {})},
                  f"{family} encoder")
    proj = sd["patch_embed.proj.weight"]
    if family == "ijepa" and proj.dim() != 4:
        raise CheckpointError(f"ijepa encoder: patch_embed.proj.weight has shape {tuple(proj.shape)}, expected 4-D")
    if family != "ijepa" and proj.dim() != 5:
        raise CheckpointError(f"{family} encoder: patch_embed.proj.weight has shape {tuple(proj.shape)}, "
                              "expected 5-D (Conv3d tubelets)")
    width = proj.shape[0]
    sizes = dict(hidden_size=width, num_hidden_layers=_count_blocks(sd, "blocks."), patch_size=proj.shape[-1],
                 num_channels=proj.shape[1], intermediate_size=sd["blocks.0.mlp.fc1.weight"].shape[0],
                 qkv_bias="blocks.0.attn.qkv.bias" in sd,
                 num_attention_heads=_heads(width, "num_attention_heads", overrides))
    if family == "ijepa":
        num_patches = sd["pos_embed"].shape[1]
        side = int(round(num_patches**0.5))
        if side * side != num_patches:
            raise CheckpointError(f"ijepa encoder: pos_embed has {num_patches} positions, expected a square grid")
        sizes["image_size"] = side * sizes["patch_size"]
    else:
        sizes["tubelet_size"] = proj.shape[2]
    return sizes


def _predictor_sizes(sd: dict[str, Tensor], overrides: dict[str, Any], *,
                     encoder_heads: int | None = None) -> dict[str, Any]:
    """Predictor config fields from Meta-layout predictor tensors. Heads: `overrides`, else `encoder_heads` (Meta's
    I-JEPA predictor uses the encoder's head count, src/helper.py `init_model`), else 12 at a width divisible by 12
    (Meta's V-JEPA 2 `pred_num_heads`)."""
    _require(sd, ["predictor_embed.weight", "predictor_blocks.0.mlp.fc1.weight"], "predictor")
    _require_dims(sd, {"predictor_embed.weight": 2, "predictor_blocks.0.mlp.fc1.weight": 2}, "predictor")
    width = sd["predictor_embed.weight"].shape[0]
    if "predictor_num_attention_heads" in overrides:
        heads = int(overrides["predictor_num_attention_heads"])
    elif encoder_heads is not None:
        if width % encoder_heads != 0:
            raise CheckpointError(f"predictor width {width} is not divisible by the encoder's {encoder_heads} heads "
                                  "(Meta's I-JEPA predictor uses the encoder's head count); pass "
                                  "predictor_num_attention_heads in overrides")
        heads = encoder_heads
    elif width % 12 == 0:
        heads = 12  # Meta's predictors use 12 heads at width 384
    else:
        raise CheckpointError(f"cannot infer predictor_num_attention_heads for width {width}; pass it in overrides")
    return dict(predictor_hidden_size=width, predictor_num_hidden_layers=_count_blocks(sd, "predictor_blocks."),
                predictor_num_attention_heads=heads,
                predictor_intermediate_size=sd["predictor_blocks.0.mlp.fc1.weight"].shape[0])


def _ours_predictor_state(sd: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """Meta predictor keys -> ours (V-JEPA 2 `mask_tokens.i` (1,1,d) are stacked into (n, d))."""
    out = {k: v for k, v in sd.items() if not k.startswith("mask_tokens.")}
    if family == "vjepa2":
        n = len([k for k in sd if k.startswith("mask_tokens.")])
        if n == 0:
            raise CheckpointError("vjepa2 predictor: no mask_tokens.* (only mask-token predictors convert)")
        gaps = [f"mask_tokens.{i}" for i in range(n) if f"mask_tokens.{i}" not in sd]
        if gaps:
            raise CheckpointError(f"vjepa2 predictor: missing keys {gaps} (expected mask_tokens.0 .. {n - 1})")
        out["mask_tokens"] = torch.stack([sd[f"mask_tokens.{i}"].reshape(-1) for i in range(n)])  # (n, d)
        out.pop("predictor_pos_embed", None)
    return out


def convert_meta_checkpoint(
    path: str | Path,
    family: str,
    *,
    overrides: dict[str, Any] | None = None,
    encoder_key: str = "target_encoder",
) -> PreTrainedModel:
    """A Meta checkpoint -> `ImageJepaForPreTraining` / `VideoJepaForPreTraining` / `JepaWorldModel`.

    Args:
        path: the `.pt` / `.pth.tar` file.
        family: 'ijepa', 'vjepa2', 'vjepa2_1' or 'vjepa2_ac'.
        overrides: config fields shapes cannot tell (e.g. num_attention_heads, image_size, num_frames).
        encoder_key: which encoder becomes the exported one (`target_encoder`, as Meta evaluates, or `encoder`).
            For the pretraining families both encoders are kept; the EMA target is the one `AutoModel` loads.
    """
    if family not in FAMILIES:
        raise CheckpointError(f"family={family!r}: expected one of {list(FAMILIES)}")
    overrides = dict(overrides or {})
    ckpt = load_meta_checkpoint(path)
    if family == "vjepa2_1":
        return convert_vjepa2_1(ckpt, path, overrides=overrides, encoder_key=encoder_key)
    key = encoder_key if encoder_key in ckpt else "encoder"
    encoder_sd = _select(ckpt, key, path)
    if family != "ijepa" and encoder_sd.pop("pos_embed", None) is not None:
        logger.warning("%s: dropping the encoder's pos_embed (V-JEPA 2 uses RoPE; released files still carry it)", path)
    enc_sizes = _encoder_sizes(encoder_sd, family, overrides)
    predictor_sd = _select(ckpt, "predictor", path)
    pred_sizes = _predictor_sizes(predictor_sd, overrides, encoder_heads=enc_sizes["num_attention_heads"]
                                  if family == "ijepa" else None)

    if family == "vjepa2_ac":
        ac_keys = ["action_encoder.weight", "state_encoder.weight", "extrinsics_encoder.weight"]
        _require(predictor_sd, ac_keys, "vjepa2_ac predictor")
        _require_dims(predictor_sd, dict.fromkeys(ac_keys, 2), "vjepa2_ac predictor")
        enc_fields = set(config_fields(VideoJepaConfig))
        enc_kw = {k: v for k, v in overrides.items() if k in enc_fields and not k.startswith("predictor_")}
        ac_kw = {k: v for k, v in overrides.items() if k not in enc_kw}
        config = JepaWorldModelConfig(**{
            "encoder_config": VideoJepaConfig(**{**enc_sizes, **enc_kw}), **pred_sizes,
            "action_dim": predictor_sd["action_encoder.weight"].shape[1],
            "state_dim": predictor_sd["state_encoder.weight"].shape[1],
            "extrinsics_dim": predictor_sd["extrinsics_encoder.weight"].shape[1], **ac_kw,
        })
        model = JepaWorldModel(config)
        load_exact(model.encoder, encoder_sd, f"{family} encoder")
        load_exact(model.predictor, predictor_sd, f"{family} predictor")
        return model.eval()

    config_cls, model_cls = ((ImageJepaConfig, ImageJepaForPreTraining) if family == "ijepa"
                             else (VideoJepaConfig, VideoJepaForPreTraining))
    if family == "vjepa2":
        pred_sizes["num_mask_tokens"] = len([k for k in predictor_sd if k.startswith("mask_tokens.")])
    config = config_cls(**{**enc_sizes, **pred_sizes, **overrides})
    model = model_cls(config)
    context_sd = _select(ckpt, "encoder", path) if "encoder" in ckpt else encoder_sd
    if family == "vjepa2":
        context_sd.pop("pos_embed", None)
    load_exact(model.encoder, context_sd, f"{family} context encoder")
    load_exact(model.target_encoder, encoder_sd, f"{family} {key}")
    load_exact(model.predictor, _ours_predictor_state(predictor_sd, family), f"{family} predictor")
    return model.eval()


def convert_checkpoint(path: str | Path, family: str, *, overrides: dict[str, Any] | None = None,
                       encoder_key: str = "target_encoder") -> PreTrainedModel:
    """Dispatch on what `path` is: a transformers folder (config.json) or a Meta checkpoint file."""
    path = Path(path)
    if path.is_dir():
        model = convert_transformers_model(path)
        if overrides:
            logger.warning("config overrides are ignored for transformers folders (their config is complete)")
        return model
    return convert_meta_checkpoint(path, family, overrides=overrides, encoder_key=encoder_key)
