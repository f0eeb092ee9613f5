"""Configuration of the V-JEPA 2.1 family (`model_type="easy_vjepa2_1"`).

V-JEPA 2.1 keeps the V-JEPA 2 ViT (tubelets, 3-D RoPE, mask-token predictor) and adds: a Conv3d image patch
embedding (time kernel 1) for T = 1 inputs, learned image / video modality embeddings, the textbook interleaved RoPE
layout, optional RoPE position interpolation to a reference grid, and LayerNorms at four fixed blocks whose outputs
form a hierarchical (4-level) representation. Its predictor reads that concatenation and can also predict the
context tokens. The config is its own model type (the weights differ in names and shapes from a 2.0 folder, and
`AutoModel` must pick the 2.1 classes), built on `VideoJepaConfig` so the shared fields and checks are the same.
"""

from __future__ import annotations

from typing import Any

from .configuration_easy_vjepa2 import VideoJepaConfig
from .configuration_jepa import vit_sizes
from .validation import check_bool, check_positive

# Meta's level table (app/vjepa_2_1/models/vision_transformer.py): encoder depth -> blocks whose outputs get a norm.
HIERARCHICAL_LAYERS: dict[int, list[int]] = {12: [2, 5, 8, 11], 24: [5, 11, 17, 23], 40: [9, 19, 29, 39],
                                             48: [11, 23, 37, 47]}
# Meta's RoPE interpolation target (RoPEAttention.pretrained_grid_size): 256 px / 16 or 252 px / 14.
ROPE_REFERENCE_GRID: dict[int, int] = {16: 16, 14: 18}
# Width of the ViT-G teacher the released ViT-B / ViT-L were distilled from (their predictors output this width).
TEACHER_WIDTH = 1664

_RELEASED = dict(image_size=384, patch_size=16, num_frames=64, num_mask_tokens=8)
_DISTILLED_PRED = dict(**vit_sizes(384, 12, 12, 1536, "predictor_"), predictor_num_levels=1,
                       predictor_output_size=TEACHER_WIDTH)
_PRED_24 = vit_sizes(384, 24, 12, 1536, "predictor_")
# Meta's four released V-JEPA 2.1 models (src/hub/backbones.py `vjepa2_1_*_384`) plus a CPU-sized preset.
VJEPA2_1_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(image_size=64, patch_size=8, num_frames=8, **vit_sizes(192, 4, 3, 768),
                 **vit_sizes(96, 4, 3, 384, "predictor_"), hierarchical_layers=[0, 1, 2, 3],
                 rope_reference_grid_size=8, num_mask_tokens=2),
    # ViT-B and ViT-L distilled from ViT-G: one-level predictors projecting to the teacher's width (1664).
    "vit_base_384": dict(**_RELEASED, **vit_sizes(768, 12, 12, 3072), **_DISTILLED_PRED),
    "vit_large_384": dict(**_RELEASED, **vit_sizes(1024, 24, 16, 4096), **_DISTILLED_PRED),
    # ViT-g (Meta's vit_giant_xformers) and ViT-G (vit_gigantic_xformers): 4-level, 24-block predictors.
    "vit_giant_384": dict(**_RELEASED, **vit_sizes(1408, 40, 22, 6144), **_PRED_24),
    "vit_gigantic_384": dict(**_RELEASED, **vit_sizes(1664, 48, 26, 8192), **_PRED_24),
}

# Written into every saved config.json so a folder loads with trust_remote_code=True without hf_jepa.
AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_easy_vjepa2_1.VideoJepa21Config",
    "AutoModel": "modeling_easy_vjepa2_1.VideoJepa21Model",
    "AutoModelForPreTraining": "modeling_easy_vjepa2_1.VideoJepa21ForPreTraining",
    "AutoModelForVideoClassification": "modeling_easy_vjepa2_1.VideoJepa21ForVideoClassification",
}

# `VideoJepa21Config()`: Meta's ViT-L at 256 px (16 frames) with a 4-level 12-block predictor, attentive probe.
VJEPA2_1_DEFAULTS: dict[str, Any] = dict(image_size=256, **vit_sizes(1024, 24, 16, 4096),
                                         **vit_sizes(384, 12, 12, 1536, "predictor_"), probe_type="attentive")


class VideoJepa21Config(VideoJepaConfig):
    """V-JEPA 2.1: the V-JEPA 2 fields (`VideoJepaConfig`) plus images, modality embeddings, RoPE interpolation and
    hierarchical outputs.

    Args:
        hierarchical_layers: blocks (0-based, increasing, the last one `num_hidden_layers - 1`) whose outputs pass
            through their own LayerNorm (`norms_block.i`); the last level is the encoder's output. None: Meta's
            table for depth 12 / 24 / 40 / 48 (stored resolved); other depths must list them.
        image_patch_embedding: a second Conv3d with time kernel 1 (`patch_embed_img`) that embeds T = 1 inputs
            (images) instead of the tubelet embedding (Meta's `img_temporal_dim_size=1`).
        modality_embedding: learned image / video embeddings added to every token (encoder after the patch
            embedding, predictor after sorting its tokens).
        interpolate_rope: rescale RoPE height / width positions so the grid spans `rope_reference_grid_size`
            positions (`pos * (R - 1) / (side - 1)`); time positions are never rescaled. Needs sides >= 2.
        rope_reference_grid_size: R; None: Meta's value for the patch size (16 for patch 16, 18 for patch 14),
            stored resolved. Required for other patch sizes when `interpolate_rope`.
        predictor_interpolate_rope: the predictor's RoPE interpolation. Meta's training builds its predictor with
            it (the released weights were trained so); Meta's torch.hub loader builds it without. None: same as
            `interpolate_rope` (stored resolved).
        predictor_num_levels: hierarchical levels the predictor reads and predicts: all of them (an MLP embeds the
            concatenation; None, stored resolved) or 1 (a Linear, the distilled ViT-B / ViT-L): the last ones.
        predictor_output_size: width of each predicted level; None: `hidden_size` (stored resolved). The distilled
            models predict their ViT-G teacher's 1664-wide features.
        predictor_context_projection: a second output projection predicting the context tokens' targets (Meta's
            `return_all_tokens`, used by the dense context loss).
        kwargs: the `VideoJepaConfig` fields; `rope_interleave_fix` defaults to True (2.1 uses the textbook layout).
    """

    model_type = "easy_vjepa2_1"
    presets = VJEPA2_1_PRESETS
    family_defaults = VJEPA2_1_DEFAULTS
    default_auto_map = AUTO_MAP

    def __init__(
        self,
        hierarchical_layers: list[int] | None = None,
        image_patch_embedding: bool = True,
        modality_embedding: bool = True,
        interpolate_rope: bool = True,
        rope_reference_grid_size: int | None = None,
        predictor_interpolate_rope: bool | None = None,
        predictor_num_levels: int | None = None,
        predictor_output_size: int | None = None,
        predictor_context_projection: bool = True,
        **kwargs: Any,
    ) -> None:
        check_bool(image_patch_embedding=image_patch_embedding, modality_embedding=modality_embedding,
                   interpolate_rope=interpolate_rope, predictor_context_projection=predictor_context_projection)
        if predictor_interpolate_rope is None:
            predictor_interpolate_rope = interpolate_rope
        check_bool(predictor_interpolate_rope=predictor_interpolate_rope)
        self.image_patch_embedding = image_patch_embedding
        self.modality_embedding = modality_embedding
        self.interpolate_rope = interpolate_rope
        self.predictor_interpolate_rope = predictor_interpolate_rope
        self.predictor_context_projection = predictor_context_projection
        kwargs.setdefault("rope_interleave_fix", True)  # 2.1 rotates with the textbook interleaved layout
        super().__init__(**{**self.family_defaults, **kwargs})
        depth = self.num_hidden_layers
        if hierarchical_layers is None:
            if depth not in HIERARCHICAL_LAYERS:
                raise ValueError(f"num_hidden_layers={depth}: Meta's level table covers depths "
                                 f"{sorted(HIERARCHICAL_LAYERS)}; expected one of them or an explicit "
                                 "hierarchical_layers list")
            hierarchical_layers = HIERARCHICAL_LAYERS[depth]
        hierarchical_layers = list(hierarchical_layers)
        valid = (hierarchical_layers and all(isinstance(i, int) and not isinstance(i, bool) for i in
                                             hierarchical_layers)
                 and all(a < b for a, b in zip(hierarchical_layers, hierarchical_layers[1:], strict=False))
                 and hierarchical_layers[0] >= 0 and hierarchical_layers[-1] == depth - 1)
        if not valid:
            raise ValueError(f"hierarchical_layers={hierarchical_layers!r}: expected increasing block indices in "
                             f"[0, {depth}) ending with num_hidden_layers - 1 = {depth - 1}")
        self.hierarchical_layers = hierarchical_layers
        if rope_reference_grid_size is None:
            rope_reference_grid_size = ROPE_REFERENCE_GRID.get(self.patch_size)
        if rope_reference_grid_size is None and (interpolate_rope or predictor_interpolate_rope):
            raise ValueError(f"rope_reference_grid_size=None with patch_size={self.patch_size}: Meta defines the "
                             f"RoPE reference grid only for patch sizes {sorted(ROPE_REFERENCE_GRID)}; expected an "
                             "explicit rope_reference_grid_size (or interpolate_rope=False)")
        if rope_reference_grid_size is not None:
            check_positive(rope_reference_grid_size=rope_reference_grid_size)
        self.rope_reference_grid_size = rope_reference_grid_size
        if predictor_num_levels is None:
            predictor_num_levels = len(hierarchical_layers)
        check_positive(predictor_num_levels=predictor_num_levels)
        if predictor_num_levels not in (1, len(hierarchical_layers)):
            raise ValueError(f"predictor_num_levels={predictor_num_levels}: expected 1 or the number of "
                             f"hierarchical_layers ({len(hierarchical_layers)})")
        self.predictor_num_levels = predictor_num_levels
        predictor_output_size = self.hidden_size if predictor_output_size is None else predictor_output_size
        check_positive(predictor_output_size=predictor_output_size)
        self.predictor_output_size = predictor_output_size

    @property
    def num_levels(self) -> int:
        """Number of hierarchical levels (norms) of the encoder."""
        return len(self.hierarchical_layers)


__all__ = ["HIERARCHICAL_LAYERS", "VJEPA2_1_PRESETS", "VideoJepa21Config"]
