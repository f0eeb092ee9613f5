"""The self-supervised pretraining recipe: arguments, model, masks, streamed data, objective, optimizer.

`scripts/pretrain.py` parses `PretrainArguments` and calls `build_pretraining`, then the shared `fit` loop.
Masks are drawn in the training process from a generator seeded by (seed, step, process), so a resumed run
draws exactly the masks the uninterrupted run would have.

Every run carries the collapse monitors (`CollapseMonitor`: effective rank, constant-predictor baseline, target
spread) and, with `--probe_label_column`, an online linear probe on the target encoder's mean-pooled features,
evaluated on a held-out split (`online_probe`); both log into metrics.jsonl.

- `arguments`: `PretrainArguments`, the per-family defaults, `build_model_config`
- `masking`: `mask_sampler`
- `data`: `data_factory`, V-JEPA 2.1's interleaved image / video batches, the fps check
- `probe`: the online probe's held-out set and features
- `setup`: `build_pretraining` (and Meta's I-JEPA re-init, the objective, the collapse monitor)
- `outputs`: `save_pretraining_outputs`
"""

from hf_jepa.pretraining.arguments import (
    DEFAULT_DATASETS,
    DEFAULT_EMA,
    META_FPS,
    SMALL_DATA_PRESETS,
    VIDEO_FAMILIES,
    PretrainArguments,
    build_model_config,
)
from hf_jepa.pretraining.data import InterleavedBatches, check_video_fps, data_factory
from hf_jepa.pretraining.masking import mask_sampler
from hf_jepa.pretraining.outputs import save_pretraining_outputs
from hf_jepa.pretraining.probe import online_probe, pooled_target_features, read_probe_split
from hf_jepa.pretraining.setup import PretrainingSetup, build_pretraining, collapse_monitor, meta_reinit, objective

__all__ = [
    "DEFAULT_DATASETS",
    "DEFAULT_EMA",
    "META_FPS",
    "SMALL_DATA_PRESETS",
    "VIDEO_FAMILIES",
    "InterleavedBatches",
    "PretrainArguments",
    "PretrainingSetup",
    "build_model_config",
    "build_pretraining",
    "check_video_fps",
    "collapse_monitor",
    "data_factory",
    "mask_sampler",
    "meta_reinit",
    "objective",
    "online_probe",
    "pooled_target_features",
    "read_probe_split",
    "save_pretraining_outputs",
]
