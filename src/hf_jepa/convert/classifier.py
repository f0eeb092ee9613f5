"""Convert video classifiers to `VideoJepaForVideoClassification`.

* transformers' `VJEPA2ForVideoClassification` (e.g. `facebook/vjepa2-vitl-fpc16-256-ssv2`): the encoder goes through
  `hf_jepa.convert.convert_transformers_model`; the attentive pooler already has our probe's layout, so its tensors
  are copied under `probe.pooler.` and `classifier.` under `probe.classifier.`.
* Meta's `AttentiveClassifier` state dicts (vjepa2 `evals/video_classification_frozen`): `meta_attentive_probe_state`
  renames them and splits the fused `kv` / `qkv` projections into our probe's `q_proj` / `k_proj` / `v_proj`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from torch import Tensor
from transformers import PreTrainedModel

from hf_jepa.convert.checkpoint import CheckpointError, load_exact, strip_prefixes
from hf_jepa.convert.from_transformers import convert_transformers_model, read_transformers_config
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForVideoClassification

__all__ = ["convert_transformers_video_classifier", "meta_attentive_probe_state"]

logger = logging.getLogger(__name__)


def convert_transformers_video_classifier(path: str | Path | PreTrainedModel) -> VideoJepaForVideoClassification:
    """A transformers `VJEPA2ForVideoClassification` folder (or loaded model) -> `VideoJepaForVideoClassification`.

    Same logits (fp32, 1e-5) for the same `pixel_values_videos` (B, T, C, H, W). The probe is attentive with
    `probe_num_self_attention_layers = num_pooler_layers`, the encoder's heads and the pooler's MLP width
    (4 * hidden_size); labels (`num_labels`, `id2label`, `label2id`) are carried over.
    """
    from transformers import VJEPA2ForVideoClassification

    if isinstance(path, PreTrainedModel):
        source = path
    else:
        config = read_transformers_config(path)
        archs = config.get("architectures") or []
        if config.get("model_type") != "vjepa2" or "VJEPA2ForVideoClassification" not in archs:
            raise CheckpointError(f"{path}: model_type={config.get('model_type')!r}, architectures={archs}; "
                                  "expected a 'vjepa2' VJEPA2ForVideoClassification folder")
        source = VJEPA2ForVideoClassification.from_pretrained(path)
    if not hasattr(source, "pooler") or not hasattr(source, "vjepa2"):
        raise CheckpointError(f"{type(source).__name__}: expected a VJEPA2ForVideoClassification (pooler + vjepa2)")
    cfg = source.config
    pretraining = convert_transformers_model(source.vjepa2)  # VideoJepaForPreTraining with both encoders
    fields = {k: v for k, v in pretraining.config.to_dict().items()
              if k in VideoJepaConfig().to_dict() and k not in ("auto_map", "architectures", "transformers_version",
                                                               "model_type")}
    config = VideoJepaConfig(**{
        **fields,
        "probe_type": "attentive",
        "probe_num_queries": source.pooler.query_tokens.shape[1],
        "probe_num_self_attention_layers": cfg.num_pooler_layers,
        "probe_num_attention_heads": cfg.num_attention_heads,
        # transformers' pooler MLPs use mlp_ratio 4 whatever the encoder's: read the width off the tensor
        "probe_intermediate_size": source.pooler.cross_attention_layer.mlp.fc1.weight.shape[0],
        "probe_layer_norm_eps": cfg.layer_norm_eps,
        "num_labels": cfg.num_labels,
        "id2label": dict(cfg.id2label),
        "label2id": dict(cfg.label2id),
    })
    model = VideoJepaForVideoClassification(config)
    load_exact(model.target_encoder, pretraining.target_encoder.state_dict(), "vjepa2 classifier encoder")
    sd = {k: v.detach().float() for k, v in source.state_dict().items()}
    probe = {f"pooler.{k[len('pooler.'):]}": v for k, v in sd.items() if k.startswith("pooler.")}
    probe.update({k: v for k, v in sd.items() if k.startswith("classifier.")})
    load_exact(model.probe, probe, "vjepa2 classifier probe (transformers)")
    return model.eval()


def _split(tensor: Tensor, parts: int) -> tuple[Tensor, ...]:
    """Split a fused (parts * D, ...) projection weight / bias into `parts` (D, ...) tensors."""
    return tuple(tensor.chunk(parts, dim=0))


def meta_attentive_probe_state(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Meta's `AttentiveClassifier` state dict -> our `AttentiveProbe` state dict (load it into `model.probe`).

    `pooler.cross_attention_block.{norm1, xattn.q, xattn.kv, norm2, mlp}` -> `pooler.cross_attention_layer.
    {layer_norm1, cross_attn.q_proj, cross_attn.k_proj / v_proj (kv split in two), layer_norm2, mlp}`;
    `pooler.blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp}` -> `pooler.self_attention_layers.i.{layer_norm1,
    self_attn.q_proj / k_proj / v_proj (qkv split in three), self_attn.out_proj, layer_norm2, mlp}`;
    `linear` -> `classifier`. `module.` prefixes (DDP) are removed. Only Meta's `complete_block=True` layout.
    """
    sd = strip_prefixes(state_dict)
    if "pooler.query_tokens" not in sd or "linear.weight" not in sd:
        raise CheckpointError(f"not a Meta AttentiveClassifier state dict (keys {list(sd)[:6]}...): expected "
                              "'pooler.query_tokens' and 'linear.weight'")
    out: dict[str, Tensor] = {"pooler.query_tokens": sd["pooler.query_tokens"]}
    renames = [
        (r"^pooler\.cross_attention_block\.norm1\.", "pooler.cross_attention_layer.layer_norm1."),
        (r"^pooler\.cross_attention_block\.norm2\.", "pooler.cross_attention_layer.layer_norm2."),
        (r"^pooler\.cross_attention_block\.xattn\.q\.", "pooler.cross_attention_layer.cross_attn.q_proj."),
        (r"^pooler\.cross_attention_block\.mlp\.", "pooler.cross_attention_layer.mlp."),
        (r"^pooler\.blocks\.(\d+)\.norm1\.", r"pooler.self_attention_layers.\1.layer_norm1."),
        (r"^pooler\.blocks\.(\d+)\.norm2\.", r"pooler.self_attention_layers.\1.layer_norm2."),
        (r"^pooler\.blocks\.(\d+)\.attn\.proj\.", r"pooler.self_attention_layers.\1.self_attn.out_proj."),
        (r"^pooler\.blocks\.(\d+)\.mlp\.", r"pooler.self_attention_layers.\1.mlp."),
        (r"^linear\.", "classifier."),
    ]
    for key, value in sd.items():
        if key == "pooler.query_tokens":
            continue
        if m := re.match(r"^pooler\.cross_attention_block\.xattn\.kv\.(weight|bias)$", key):
            k, v = _split(value, 2)
            out[f"pooler.cross_attention_layer.cross_attn.k_proj.{m.group(1)}"] = k
            out[f"pooler.cross_attention_layer.cross_attn.v_proj.{m.group(1)}"] = v
            continue
        if m := re.match(r"^pooler\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", key):
            for name, part in zip(("q_proj", "k_proj", "v_proj"), _split(value, 3), strict=True):
                out[f"pooler.self_attention_layers.{m.group(1)}.self_attn.{name}.{m.group(2)}"] = part
            continue
        for pattern, replacement in renames:
            if re.match(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise CheckpointError(f"Meta AttentiveClassifier: unexpected key {key!r}")
    return out
