"""transformers' `IJepaModel` / `VJEPA2Model` folders -> hf_jepa models with identical weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedConfig, PreTrainedModel

from hf_jepa.convert.checkpoint import CheckpointError, load_exact
from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaModel
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining


def _fuse_qkv(sd: dict[str, Tensor], src: str, names: tuple[str, str, str], dst: str) -> dict[str, Tensor]:
    out = {f"{dst}.weight": torch.cat([sd[f"{src}.{n}.weight"] for n in names], dim=0)}
    if f"{src}.{names[0]}.bias" in sd:
        out[f"{dst}.bias"] = torch.cat([sd[f"{src}.{n}.bias"] for n in names], dim=0)
    return out


def _copy(sd: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    return {f"{dst}.{p}": sd[f"{src}.{p}"] for p in ("weight", "bias") if f"{src}.{p}" in sd}


def _ijepa_from_transformers(sd: dict[str, Tensor], cfg: PreTrainedConfig) -> ImageJepaModel:
    if getattr(cfg, "hidden_act", "gelu") != "gelu":
        raise CheckpointError(f"ijepa: hidden_act={cfg.hidden_act!r} is not supported, expected 'gelu'")
    image_size = cfg.image_size if isinstance(cfg.image_size, int) else cfg.image_size[0]
    patch = cfg.patch_size if isinstance(cfg.patch_size, int) else cfg.patch_size[0]
    config = ImageJepaConfig(image_size=image_size, patch_size=patch, num_channels=cfg.num_channels,
                             hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
                             num_attention_heads=cfg.num_attention_heads, intermediate_size=cfg.intermediate_size,
                             qkv_bias=cfg.qkv_bias, layer_norm_eps=cfg.layer_norm_eps)
    ours = {"pos_embed": sd["embeddings.position_embeddings"]}
    ours.update(_copy(sd, "embeddings.patch_embeddings.projection", "patch_embed.proj"))
    ours.update(_copy(sd, "layernorm", "norm"))
    for i in range(cfg.num_hidden_layers):
        src, dst = f"layers.{i}", f"blocks.{i}"
        ours.update(_fuse_qkv(sd, f"{src}.attention", ("q_proj", "k_proj", "v_proj"), f"{dst}.attn.qkv"))
        ours.update(_copy(sd, f"{src}.attention.o_proj", f"{dst}.attn.proj"))
        ours.update(_copy(sd, f"{src}.layernorm_before", f"{dst}.norm1"))
        ours.update(_copy(sd, f"{src}.layernorm_after", f"{dst}.norm2"))
        ours.update(_copy(sd, f"{src}.mlp.fc1", f"{dst}.mlp.fc1"))
        ours.update(_copy(sd, f"{src}.mlp.fc2", f"{dst}.mlp.fc2"))
    model = ImageJepaModel(config)
    load_exact(model, ours, "ijepa (transformers)")
    return model.eval()


def _vjepa2_layers(sd: dict[str, Tensor], src: str, dst: str, depth: int) -> dict[str, Tensor]:
    ours: dict[str, Tensor] = {}
    for i in range(depth):
        s, d = f"{src}.{i}", f"{dst}.{i}"
        ours.update(_fuse_qkv(sd, f"{s}.attention", ("query", "key", "value"), f"{d}.attn.qkv"))
        for a, b in (("attention.proj", "attn.proj"), ("norm1", "norm1"), ("norm2", "norm2"),
                     ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
            ours.update(_copy(sd, f"{s}.{a}", f"{d}.{b}"))
    return ours


def _vjepa2_from_transformers(sd: dict[str, Tensor], cfg: PreTrainedConfig) -> VideoJepaForPreTraining:
    if getattr(cfg, "hidden_act", "gelu") != "gelu":
        raise CheckpointError(f"vjepa2: hidden_act={cfg.hidden_act!r} is not supported, expected 'gelu'")
    config = VideoJepaConfig(
        image_size=cfg.crop_size, patch_size=cfg.patch_size, tubelet_size=cfg.tubelet_size,
        num_frames=cfg.frames_per_clip, num_channels=cfg.in_chans, hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        intermediate_size=int(cfg.hidden_size * cfg.mlp_ratio), predictor_hidden_size=cfg.pred_hidden_size,
        predictor_num_hidden_layers=cfg.pred_num_hidden_layers,
        predictor_num_attention_heads=cfg.pred_num_attention_heads,
        predictor_intermediate_size=int(cfg.pred_hidden_size * cfg.pred_mlp_ratio),
        num_mask_tokens=cfg.pred_num_mask_tokens, qkv_bias=cfg.qkv_bias, layer_norm_eps=cfg.layer_norm_eps,
    )
    enc = _copy(sd, "encoder.embeddings.patch_embeddings.proj", "patch_embed.proj")
    enc.update(_copy(sd, "encoder.layernorm", "norm"))
    enc.update(_vjepa2_layers(sd, "encoder.layer", "blocks", cfg.num_hidden_layers))
    pred = {"mask_tokens": sd["predictor.embeddings.mask_tokens"].reshape(cfg.pred_num_mask_tokens, -1)}
    pred.update(_copy(sd, "predictor.embeddings.predictor_embeddings", "predictor_embed"))
    pred.update(_copy(sd, "predictor.layernorm", "predictor_norm"))
    pred.update(_copy(sd, "predictor.proj", "predictor_proj"))
    pred.update(_vjepa2_layers(sd, "predictor.layer", "predictor_blocks", cfg.pred_num_hidden_layers))
    model = VideoJepaForPreTraining(config)
    load_exact(model.encoder, enc, "vjepa2 encoder (transformers)")
    load_exact(model.target_encoder, enc, "vjepa2 encoder (transformers)")
    load_exact(model.predictor, pred, "vjepa2 predictor (transformers)")
    return model.eval()


def read_transformers_config(path: str | Path) -> dict[str, Any]:
    """The config.json of a transformers folder; a CheckpointError when there is none."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: not a transformers folder (no config.json)")
    return json.loads(config_file.read_text())


def convert_transformers_model(path: str | Path) -> PreTrainedModel:
    """A transformers `IJepaModel` / `VJEPA2Model` folder (or a loaded model) -> ours.

    I-JEPA gives an `ImageJepaModel` (transformers has no predictor); V-JEPA 2 a `VideoJepaForPreTraining` whose
    context and target encoders both hold the transformers encoder.
    """
    from transformers import AutoModel

    if isinstance(path, PreTrainedModel):
        model = path
    else:
        model_type = read_transformers_config(path).get("model_type")
        if model_type not in ("ijepa", "vjepa2"):
            raise CheckpointError(f"{path}: model_type={model_type!r}, expected 'ijepa' or 'vjepa2'")
        model = AutoModel.from_pretrained(path)
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    if model.config.model_type == "ijepa":
        return _ijepa_from_transformers(sd, model.config)
    if model.config.model_type == "vjepa2":
        return _vjepa2_from_transformers(sd, model.config)
    raise CheckpointError(f"model_type={model.config.model_type!r}: expected 'ijepa' or 'vjepa2'")
