"""Convert Meta's checkpoints and transformers' `IJepaModel` / `VJEPA2Model` folders into hf_jepa models.

Meta's checkpoints are what their train scripts `torch.save`: a dict with `encoder`, `target_encoder`,
`predictor` state dicts whose keys may carry `module.` (DDP) and/or `backbone.` (V-JEPA's multi-seq wrappers)
prefixes. They are read with `torch.load(..., weights_only=True)`. Sizes come from tensor shapes; what shapes
cannot tell (attention heads, the V-JEPA 2 training grid) comes from `overrides`.

- `checkpoint`: reading Meta's files, prefixes, strict loading (`CheckpointError`)
- `meta`: I-JEPA / V-JEPA 2 / V-JEPA 2-AC checkpoints, and `convert_checkpoint` (every source)
- `vjepa2_1`: V-JEPA 2.1 checkpoints
- `from_transformers`: transformers' encoder folders
- `classifier`: transformers' video classifiers and Meta's attentive probes
"""

from hf_jepa.convert.checkpoint import FAMILIES, CheckpointError, load_exact, load_meta_checkpoint, strip_prefixes
from hf_jepa.convert.classifier import convert_transformers_video_classifier, meta_attentive_probe_state
from hf_jepa.convert.from_transformers import convert_transformers_model, read_transformers_config
from hf_jepa.convert.meta import convert_checkpoint, convert_meta_checkpoint
from hf_jepa.convert.vjepa2_1 import convert_vjepa2_1, vjepa2_1_preset_for

__all__ = [
    "FAMILIES",
    "CheckpointError",
    "convert_checkpoint",
    "convert_meta_checkpoint",
    "convert_transformers_model",
    "convert_transformers_video_classifier",
    "convert_vjepa2_1",
    "load_exact",
    "load_meta_checkpoint",
    "meta_attentive_probe_state",
    "read_transformers_config",
    "strip_prefixes",
    "vjepa2_1_preset_for",
]
