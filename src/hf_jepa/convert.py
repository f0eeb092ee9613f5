"""Convert Meta's checkpoints and transformers' `IJepaModel` / `VJEPA2Model` folders into hf_jepa models.

Meta's checkpoints are what their train scripts `torch.save`: a dict with `encoder`, `target_encoder`,
`predictor` state dicts whose keys may carry `module.` (DDP) and/or `backbone.` (V-JEPA's multi-seq wrappers)
prefixes. They are read with `torch.load(..., weights_only=True)`. Sizes come from tensor shapes; what shapes
cannot tell (attention heads, the V-JEPA 2 training grid) comes from `overrides`.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedConfig, PreTrainedModel

from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_1 import HIERARCHICAL_LAYERS, VJEPA2_1_PRESETS, VideoJepa21Config
from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining, ImageJepaModel
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21ForPreTraining
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
from hf_jepa.modeling.validation import config_fields

logger = logging.getLogger(__name__)

FAMILIES = ("ijepa", "vjepa2", "vjepa2_1", "vjepa2_ac")
# Heads of Meta's published widths (their vit_* constructors); other widths need an explicit override.
_HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
_PREFIXES = ("module.", "backbone.")


class CheckpointError(ValueError):
    """A checkpoint whose layout or contents cannot be converted; the message says what and why."""


def strip_prefixes(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove leading `module.` / `backbone.` prefixes (in any order, any number) from every key."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def load_meta_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load(path, weights_only=True)` on CPU with a clear error for files that are not checkpoints."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"checkpoint {path}: {_refusal_reason(str(err))}") from err
    except Exception as err:  # zip / io errors: report the file and the cause
        raise CheckpointError(f"checkpoint {path}: cannot be read with torch.load(weights_only=True): {err}") from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, got {type(ckpt).__name__}")
    return ckpt


def _refusal_reason(message: str) -> str:
    """What torch's weights-only unpickler refused, in one line (its message also suggests weights_only=False,
    which would run whatever code the file carries, so that advice is not repeated)."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return (f"not a plain tensor checkpoint: it references the Python object {found.group(1)!r}, which "
                "torch.load(weights_only=True) refuses to import or call (unpickling it could run code). Expected "
                "dicts of tensors, numbers and strings, as Meta's train scripts save; re-save the state dicts from "
                "a trusted environment if you trust the file")
    found = re.search(r"Unsupported operand (\d+)", message)
    detail = f" (pickle opcode {int(found.group(1))} is not allowed)" if found else ""
    return (f"cannot be read with torch.load(weights_only=True): not a plain tensor checkpoint{detail}; expected a "
            "file written by torch.save of dicts of tensors")


def _count_blocks(sd: dict[str, Tensor], prefix: str) -> int:
    ids = {int(m.group(1)) for k in sd if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))}
    return max(ids) + 1 if ids else 0


def _heads(width: int, key: str, overrides: dict[str, Any]) -> int:
    if key in overrides:
        return int(overrides[key])
    if width in _HEADS_BY_WIDTH:
        return _HEADS_BY_WIDTH[width]
    raise CheckpointError(
        f"cannot infer {key} for width {width} from tensor shapes; pass --config_overrides '{{\"{key}\": N}}'"
    )


def _require(sd: dict[str, Tensor], keys: list[str], what: str) -> None:
    missing = [k for k in keys if k not in sd]
    if missing:
        raise CheckpointError(f"{what}: unknown checkpoint layout, missing keys {missing[:4]} (have {list(sd)[:4]}...)")


def _require_dims(sd: dict[str, Tensor], dims: dict[str, int], what: str) -> None:
    wrong = [f"{k} has shape {tuple(sd[k].shape)}, expected {n}-D" for k, n in dims.items() if sd[k].dim() != n]
    if wrong:
        raise CheckpointError(f"{what}: {'; '.join(wrong)}")


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


def _select(ckpt: dict[str, Any], key: str, path: str | Path) -> dict[str, Tensor]:
    if key not in ckpt or not isinstance(ckpt[key], dict):
        raise CheckpointError(f"checkpoint {path}: unknown layout, expected a '{key}' state dict, "
                              f"found keys {sorted(ckpt)[:8]}")
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in ckpt[key].items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(f"checkpoint {path}: '{key}' holds non-tensor values {_first(not_tensors)}, "
                              "expected a state dict of tensors")
    return strip_prefixes(ckpt[key])


def _more(items: list[str], shown: int) -> str:
    return f" (and {len(items) - shown} more)" if len(items) > shown else ""


def _first(keys: list[str], n: int = 5) -> str:
    return f"{keys[:n]}{_more(keys, n)}"


def load_exact(model: torch.nn.Module, state: dict[str, Tensor], what: str) -> None:
    """Load every tensor, each with the shape the model (sized from the checkpoint's tensors) expects; a
    CheckpointError names the wrong shapes, missing and unexpected keys."""
    expected = model.state_dict()
    wrong = [f"{k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}"
             for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if wrong:
        raise CheckpointError(f"{what}: {'; '.join(wrong[:5])}{_more(wrong, 5)} (expected shapes follow the sizes "
                              "read from the checkpoint's other tensors and the overrides)")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = ([f"missing keys {_first(missing)}"] if missing else []) + (
            [f"unexpected keys {_first(unexpected)}"] if unexpected else [])
        raise CheckpointError(f"{what}: {', '.join(parts)}")
    model.load_state_dict(state, strict=True)


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


# ---------------------------------------------------------------------------------------------------------------
# V-JEPA 2.1
# ---------------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------------
# transformers -> ours
# ---------------------------------------------------------------------------------------------------------------


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
