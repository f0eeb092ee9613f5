"""Multi-block mask generators for JEPA pretraining.

Two generators, both returning *sorted flat token indices* (``torch.long``) collated per batch:

- :class:`MultiBlockMaskGenerator2D` -- I-JEPA (Assran et al., 2023, arXiv:2301.08243, Sec. 3).
  On a ``(H, W)`` patch grid it samples ``npred`` target blocks and ``nenc`` context blocks; the
  context is the context block minus every target block. Flat index = ``h * W + w``.
- :class:`MultiBlockMaskGenerator3D` -- V-JEPA / V-JEPA 2 (Bardes et al., 2024, arXiv:2404.08471;
  Assran et al., 2025, arXiv:2506.09985). On a ``(T, H, W)`` token grid (``T = frames // tubelet``)
  each mask *family* samples ``num_blocks`` spatio-temporal blocks that form the target; the
  context is the complement. One ``(context, target)`` pair per family; the pretraining step runs
  one predictor pass per family. Flat index = ``t * H * W + h * W + w``.

Collation follows Meta's ``MaskCollator``: the block *size* is sampled once per batch, block
*positions* per sample, and every row is truncated to the shortest row of the batch (keeping the
first tokens in raster order) so the rows stack into one tensor.

Randomness comes only from the ``torch.Generator`` passed to ``__call__`` (a CPU generator, or
``None`` for torch's global RNG), so a seeded generator reproduces a batch exactly.

Deliberate differences from Meta's code (facebookresearch/ijepa ``src/masks/multiblock.py``,
facebookresearch/vjepa2 ``src/masks/multiseq_multiblock3d.py``):

1. Block corners are drawn from ``[0, H - h]`` *inclusive* (ijepa PR #40). I-JEPA draws
   ``torch.randint(0, H - h)``, whose upper bound is exclusive, so the last row and column of the
   grid are never covered by any target block, and I-JEPA clamps ``h <= H - 1`` so the context
   block never covers them either. Here blocks may span the full grid (``h <= H``) and every
   position is reachable. V-JEPA 2's 3D code already draws inclusively; we keep that.
2. I-JEPA draws one uniform number for both the block scale and the aspect ratio (so bigger
   blocks are always taller); here they are independent draws, as in V-JEPA 2.
3. I-JEPA enforces ``min_keep`` by relaxing the no-overlap constraint after 20 failed tries, so
   its context can overlap a target. Here a sample whose context is too small is redrawn
   entirely (targets and context, rejection sampling), so context and targets never overlap;
   after ``max_attempts`` rounds a ``RuntimeError`` names the infeasible config. ``min_keep`` is
   "at least" (I-JEPA: strictly more than) and applies to context blocks only (a target block
   always has exactly ``h * w`` tokens; I-JEPA's check on targets could only loop forever).

``MultiBlockMaskConfig2D(meta_compatible_masks=True)`` switches these fixes off and samples as Meta's I-JEPA
``MaskCollator`` does (same distribution, our generator): corners from ``[0, H - h)``, blocks at most
``(H - 1, W - 1)``, one uniform draw for scale and aspect ratio, and the context's ``min_keep`` loop that drops the
last target constraint after every 20 failed draws. On a 14 x 14 grid with the default config and batches of 32
the collated context keeps 56.1 tokens there (Meta's collator: 56.3) against 64.5 with the fixes
(``docs/pretraining.md``, "our masks vs Meta's"; ``tests/test_meta_mask_parity.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

from hf_jepa.modeling.validation import check_bool, check_ordered_pair, check_positive, check_range

logger = logging.getLogger(__name__)

__all__ = [
    "MaskBatch2D",
    "MaskFamily3D",
    "MaskPair",
    "MultiBlockMaskConfig2D",
    "MultiBlockMaskConfig3D",
    "MultiBlockMaskGenerator2D",
    "MultiBlockMaskGenerator3D",
]


# ----------------------------------------------------------------------------------------------
# validation (hf_jepa.modeling.validation's helpers: errors name the field, the value and what was expected)


def _check_grid(value: Any, ndim: int, names: str) -> tuple[int, ...]:
    grid = (value,) * ndim if isinstance(value, int) and not isinstance(value, bool) else value
    ok = isinstance(grid, Sequence) and len(grid) == ndim
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in grid)
    if not ok:
        raise ValueError(f"grid_size={value!r}: expected {ndim} positive integers {names} (in tokens)")
    return tuple(grid)


# ----------------------------------------------------------------------------------------------
# configs


@dataclass(frozen=True)
class MultiBlockMaskConfig2D:
    """I-JEPA multi-block masking. Defaults are Meta's shipped config (``configs/in1k_vith14_ep300.yaml``).

    Args:
        enc_mask_scale: (min, max) fraction of the grid covered by a context block, before the
            targets are removed. The context block is square (aspect ratio 1), as in I-JEPA.
        pred_mask_scale: (min, max) fraction of the grid covered by each target block.
        aspect_ratio: (min, max) height / width of a target block.
        nenc: number of context blocks per sample (Meta's ``num_enc_masks``).
        npred: number of target blocks per sample (Meta's ``num_pred_masks``).
        min_keep: a context block keeps at least this many tokens after removing the targets.
        allow_overlap: if True the context block is *not* cut by the targets.
        max_attempts: rejection-sampling rounds per batch before a ``RuntimeError``.
        meta_compatible_masks: sample exactly as Meta's I-JEPA ``MaskCollator`` (``src/masks/multiblock.py``)
            instead of our fixed sampler: block corners in ``[0, H - h)`` and blocks of at most ``(H - 1, W - 1)``
            (the last row and column are never in a target, and on Meta's grids the context block is the top-left
            ``(H - 1) x (W - 1)`` square), one uniform draw shared by scale and aspect ratio, a context block kept
            when it has *more than* ``min_keep`` tokens, and after every 20 failed draws of a sample its context
            is cut by one target fewer (so it may overlap the last targets). ``max_attempts`` is unused (Meta's
            loop always ends). Default off: our fixes (see the module docstring).
    """

    enc_mask_scale: tuple[float, float] = (0.85, 1.0)
    pred_mask_scale: tuple[float, float] = (0.15, 0.2)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    nenc: int = 1
    npred: int = 4
    min_keep: int = 10
    allow_overlap: bool = False
    max_attempts: int = 1000
    meta_compatible_masks: bool = False

    def __post_init__(self) -> None:
        # frozen dataclass: normalise (e.g. YAML lists -> tuples) through object.__setattr__
        for name in ("enc_mask_scale", "pred_mask_scale"):
            object.__setattr__(self, name, check_ordered_pair(name, getattr(self, name), 0.0, 1.0))
        object.__setattr__(self, "aspect_ratio", check_ordered_pair("aspect_ratio", self.aspect_ratio, 0.0))
        check_positive(nenc=self.nenc, npred=self.npred, min_keep=self.min_keep, max_attempts=self.max_attempts)
        check_bool(allow_overlap=self.allow_overlap, meta_compatible_masks=self.meta_compatible_masks)


@dataclass(frozen=True)
class MaskFamily3D:
    """One V-JEPA mask family: ``num_blocks`` blocks whose union is the target.

    Field names follow V-JEPA 2's YAML ``mask:`` entries, see :meth:`from_dict`.

    Args:
        num_blocks: blocks per sample; their union is the target (masked) region.
        spatial_scale: (min, max) fraction of the ``H * W`` frame covered by one block.
        temporal_scale: (min, max) fraction of the ``T`` time steps covered by one block.
        aspect_ratio: (min, max) height / width of a block.
        max_temporal_keep: the context only spans the first ``max(1, int(T * r))`` time steps; the
            later steps join the target.
        max_keep: optional cap on the number of context tokens (applied after batch truncation).
    """

    num_blocks: int
    spatial_scale: tuple[float, float]
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    max_temporal_keep: float = 1.0
    max_keep: int | None = None

    def __post_init__(self) -> None:
        check_positive(num_blocks=self.num_blocks)
        for name in ("spatial_scale", "temporal_scale"):
            object.__setattr__(self, name, check_ordered_pair(name, getattr(self, name), 0.0, 1.0))
        object.__setattr__(self, "aspect_ratio", check_ordered_pair("aspect_ratio", self.aspect_ratio, 0.0))
        check_range("max_temporal_keep", self.max_temporal_keep, 0.0, 1.0, include_low=False)
        object.__setattr__(self, "max_temporal_keep", float(self.max_temporal_keep))
        if self.max_keep is not None:
            check_positive(max_keep=self.max_keep)

    # Meta options we do not implement; accepted by from_dict only at their default (False).
    _UNSUPPORTED = ("full_complement", "pred_full_complement", "inv_block")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MaskFamily3D:
        """Build from one entry of V-JEPA 2's YAML ``mask:`` list (unknown keys raise)."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in cls._UNSUPPORTED:
                if value:
                    raise ValueError(f"{key}={value!r}: not supported by MaskFamily3D (expected False)")
            elif key in known:
                kwargs[key] = value
            else:
                raise ValueError(f"{key}={value!r}: unknown mask family field (expected one of {sorted(known)})")
        return cls(**kwargs)


def _default_families() -> tuple[MaskFamily3D, ...]:
    # V-JEPA 2 configs/train/vitl16/pretrain-256px-16f.yaml
    return (
        MaskFamily3D(num_blocks=8, spatial_scale=(0.15, 0.15)),  # short-range
        MaskFamily3D(num_blocks=2, spatial_scale=(0.7, 0.7)),  # long-range
    )


@dataclass(frozen=True)
class MultiBlockMaskConfig3D:
    """V-JEPA multi-block masking: one (context, target) pair per family.

    Default is V-JEPA 2's: short-range (8 blocks of spatial scale 0.15) and long-range (2 blocks
    of spatial scale 0.7), aspect ratio (0.75, 1.5), full temporal extent, no ``max_keep``.
    """

    families: tuple[MaskFamily3D, ...] = field(default_factory=_default_families)
    max_attempts: int = 1000

    def __post_init__(self) -> None:
        fams = self.families
        if isinstance(fams, MaskFamily3D) or not isinstance(fams, Sequence) or len(fams) == 0:
            raise ValueError(f"families={fams!r}: expected a non-empty sequence of MaskFamily3D")
        fams = tuple(MaskFamily3D.from_dict(f) if isinstance(f, Mapping) else f for f in fams)
        for i, f in enumerate(fams):
            if not isinstance(f, MaskFamily3D):
                raise ValueError(f"families[{i}]={f!r}: expected a MaskFamily3D or a mapping")
        object.__setattr__(self, "families", fams)
        check_positive(max_attempts=self.max_attempts)

    @classmethod
    def for_grid(cls, grid_size: tuple[int, int, int]) -> MultiBlockMaskConfig3D:
        """V-JEPA 2's families, scaled for grids smaller than Meta's 16 x 16 positions per frame.

        Meta's long-range blocks (2 of spatial scale 0.7) leave about a tenth of the frame as context; rows are
        truncated to the shortest in the batch, so on an 8 x 8 grid that is 4 of 64 positions (6%). Below 16 x 16
        positions the long-range blocks take spatial scale 0.5 instead, which keeps about a quarter of the frame
        (16 of 64 positions at 8 x 8). Grids of 16 x 16 and more get Meta's families unchanged.

        Args:
            grid_size: ``(T, H, W)`` token grid.
        """
        _, height, width = _check_grid(grid_size, 3, "(T, H, W)")
        if height * width >= 256:
            return cls()
        return cls(families=(MaskFamily3D(num_blocks=8, spatial_scale=(0.15, 0.15)),
                             MaskFamily3D(num_blocks=2, spatial_scale=(0.5, 0.5))))


# ----------------------------------------------------------------------------------------------
# outputs


class _MaskTensors:
    """`to` / `pin_memory` of the mask batches below, whose fields are all tensors."""

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Any:
        return replace(self, **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                                for f in fields(self)})

    def pin_memory(self) -> Any:  # picked up by DataLoader(pin_memory=True)
        return replace(self, **{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})


@dataclass(frozen=True)
class MaskBatch2D(_MaskTensors):
    """I-JEPA masks for one batch; sorted flat indices ``h * W + w`` into the ``(H, W)`` grid.

    Attributes:
        context: ``(nenc, B, K)`` long, tokens the context encoder sees, one row per context
            block and sample. With the default ``nenc=1`` use ``context[0]`` -> ``(B, K)``.
        targets: ``(npred, B, M)`` long, tokens of each target block; ``M = h * w`` of the block
            size sampled for this batch.
    """

    context: Tensor
    targets: Tensor


@dataclass(frozen=True)
class MaskPair(_MaskTensors):
    """One V-JEPA mask family for one batch; sorted flat indices ``t * H * W + h * W + w``.

    Attributes:
        context: ``(B, K)`` long, tokens the context encoder sees (complement of the blocks).
        target: ``(B, M)`` long, tokens the predictor predicts (union of the blocks).
    """

    context: Tensor
    target: Tensor


# ----------------------------------------------------------------------------------------------
# sampling primitives


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + torch.rand(1, generator=generator).item() * (hi - lo)


def _draw_block_hw(height: int, width: int, scale: tuple[float, float], aspect_ratio: tuple[float, float],
                   generator: torch.Generator | None) -> tuple[int, int]:
    """`_block_hw` for a scale, then an aspect ratio, drawn uniformly from their (min, max) ranges."""
    return _block_hw(height, width, _uniform(*scale, generator), _uniform(*aspect_ratio, generator))


def _block_hw(height: int, width: int, scale: float, aspect_ratio: float) -> tuple[int, int]:
    """Block (h, w) covering ~``scale`` of the grid with h / w ~ ``aspect_ratio``, clamped to [1, grid]."""
    num = int(height * width * scale)
    h = int(round(math.sqrt(num * aspect_ratio)))
    w = int(round(math.sqrt(num / aspect_ratio)))
    return min(max(h, 1), height), min(max(w, 1), width)


def _interval(n: int, k: int, length: int, size: int, generator: torch.Generator | None) -> Tensor:
    """``(n, k, length)`` bool: one random interval of ``size`` per (n, k); start in [0, length - size]."""
    start = torch.randint(0, length - size + 1, (n, k, 1), generator=generator)  # inclusive (ijepa PR #40)
    pos = torch.arange(length)  # (length,)
    return (pos >= start) & (pos < start + size)  # (n, k, length)


def _rejection_sample(
    batch_size: int, max_attempts: int, draw: Callable[[int], tuple[Tensor, tuple[Tensor, ...]]], what: str
) -> tuple[Tensor, ...] | None:
    """Masks for every sample, redrawing the rejected ones, in at most ``max_attempts`` rounds.

    ``draw(n)`` returns ``(accepted, masks)`` for the ``n`` samples still pending: an ``(n,)`` bool and ``(n, ...)``
    tensors. Returns the accepted masks ``(batch_size, ...)`` in sample order, or None when samples are still
    pending after ``max_attempts`` rounds (the caller raises, naming its config).
    """
    out: list[Tensor] = []
    pending = torch.arange(batch_size)  # samples still to draw
    for attempt in range(max_attempts):
        accepted, masks = draw(pending.numel())
        if not out:
            out = [torch.zeros(batch_size, *m.shape[1:], dtype=m.dtype) for m in masks]
        for full, m in zip(out, masks, strict=True):
            full[pending[accepted]] = m[accepted]
        pending = pending[~accepted]
        if pending.numel() == 0:
            return tuple(out)
        logger.debug("%s: %d/%d samples redrawn (attempt %d)", what, pending.numel(), batch_size, attempt + 1)
    return None


def _rows_to_indices(mask: Tensor, length: int) -> Tensor:
    """``(R, N)`` bool with >= ``length`` True per row -> ``(R, length)`` long: first ``length`` True columns."""
    keep = mask & (mask.cumsum(dim=-1) <= length)  # (R, N), exactly `length` True per row
    return keep.nonzero()[:, 1].view(mask.shape[0], length)  # nonzero is row-major: (R*length,) -> (R, length)


# Meta's I-JEPA collator: after this many failed context draws of a sample, one target constraint less.
META_TIMEOUT = 20


def _meta_block_hw(height: int, width: int, scale: tuple[float, float], aspect_ratio: tuple[float, float],
                   generator: torch.Generator | None) -> tuple[int, int]:
    """Meta's I-JEPA ``_sample_block_size``: one uniform draw for both the scale and the aspect ratio, then
    ``h, w`` lowered to at most ``(H - 1, W - 1)`` (so a block never spans the grid)."""
    u = torch.rand(1, generator=generator).item()
    num = int(height * width * (scale[0] + u * (scale[1] - scale[0])))
    ratio = aspect_ratio[0] + u * (aspect_ratio[1] - aspect_ratio[0])
    h = int(round(math.sqrt(num * ratio)))
    w = int(round(math.sqrt(num / ratio)))
    return min(h, height - 1), min(w, width - 1)


def _meta_boxes(n: int, k: int, height: int, width: int, hw: tuple[int, int],
                generator: torch.Generator | None) -> Tensor:
    """``(n, k, H, W)`` bool: Meta's block placement, corners in ``[0, H - h) x [0, W - w)`` (upper bound
    exclusive, so a block never touches the last row / column)."""
    h, w = hw
    top = torch.randint(0, height - h, (n, k, 1), generator=generator)  # (n, k, 1)
    left = torch.randint(0, width - w, (n, k, 1), generator=generator)  # (n, k, 1)
    rows = (torch.arange(height) >= top) & (torch.arange(height) < top + h)  # (n, k, H)
    cols = (torch.arange(width) >= left) & (torch.arange(width) < left + w)  # (n, k, W)
    return rows[..., :, None] & cols[..., None, :]  # (n, k, H, W)


# ----------------------------------------------------------------------------------------------
# generators


class MultiBlockMaskGenerator2D:
    """I-JEPA multi-block masks on a ``(H, W)`` patch grid.

    Per batch: one target block size (scale from ``pred_mask_scale``, aspect ratio from
    ``aspect_ratio``) and one context block size (scale from ``enc_mask_scale``, square) are
    drawn. Per sample: ``npred`` target blocks and ``nenc`` context blocks are placed uniformly
    (corners drawn from ``[0, H - h]`` inclusive -- Meta's ``randint(0, H - h)`` never reaches the
    last row/column, ijepa PR #40); each context block minus the union of the targets must keep
    at least ``min_keep`` tokens, else the sample is redrawn. Context rows are truncated to the
    shortest row of the batch (first tokens in raster order, as Meta).

    Args:
        grid_size: ``(H, W)`` patch grid in tokens (e.g. ``(224 // 16, 224 // 16)``), or an int.
        config: masking hyper-parameters; defaults to I-JEPA's.

    Example::

        gen = MultiBlockMaskGenerator2D((14, 14))
        masks = gen(batch_size=8, generator=torch.Generator().manual_seed(0))
        masks.context.shape  # (1, 8, K)
        masks.targets.shape  # (4, 8, M)
    """

    def __init__(self, grid_size: int | tuple[int, int], config: MultiBlockMaskConfig2D | None = None) -> None:
        self.height, self.width = _check_grid(grid_size, 2, "(height, width)")
        self.config = config if config is not None else MultiBlockMaskConfig2D()
        if not isinstance(self.config, MultiBlockMaskConfig2D):
            raise ValueError(f"config={self.config!r}: expected a MultiBlockMaskConfig2D")
        if self.config.min_keep > self.num_tokens:
            raise ValueError(
                f"min_keep={self.config.min_keep}: expected <= the {self.num_tokens} tokens of grid "
                f"{(self.height, self.width)}"
            )

    @property
    def num_tokens(self) -> int:
        return self.height * self.width

    def block_sizes(self, generator: torch.Generator | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
        """The ``(h, w)`` of the target blocks and of the context block of one batch (drawn once per batch).

        Ours: independent uniform scale and aspect-ratio draws, blocks up to the whole grid. With
        ``meta_compatible_masks``: Meta's law (one draw for both, at most ``(H - 1, W - 1)``).
        """
        cfg = self.config
        if cfg.meta_compatible_masks:
            pred_hw = _meta_block_hw(self.height, self.width, cfg.pred_mask_scale, cfg.aspect_ratio, generator)
            return pred_hw, _meta_block_hw(self.height, self.width, cfg.enc_mask_scale, (1.0, 1.0), generator)
        pred_hw = _draw_block_hw(self.height, self.width, cfg.pred_mask_scale, cfg.aspect_ratio, generator)
        enc_hw = _block_hw(self.height, self.width, _uniform(*cfg.enc_mask_scale, generator), 1.0)
        return pred_hw, enc_hw

    def _boxes(self, n: int, k: int, hw: tuple[int, int], generator: torch.Generator | None) -> Tensor:
        """``(n, k, H, W)`` bool: ``k`` uniformly placed ``hw`` rectangles per sample."""
        rows = _interval(n, k, self.height, hw[0], generator)  # (n, k, H)
        cols = _interval(n, k, self.width, hw[1], generator)  # (n, k, W)
        return rows[..., :, None] & cols[..., None, :]  # (n, k, H, W)

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskBatch2D:
        """Sample masks for ``batch_size`` samples; see :class:`MaskBatch2D` for shapes."""
        check_positive(batch_size=batch_size)
        if self.config.meta_compatible_masks:
            return self._meta_call(batch_size, generator)
        cfg, B, N = self.config, batch_size, self.num_tokens
        pred_hw, enc_hw = self.block_sizes(generator)

        def draw(n: int) -> tuple[Tensor, tuple[Tensor, Tensor]]:
            tgt = self._boxes(n, cfg.npred, pred_hw, generator)  # (n, npred, H, W)
            ctx = self._boxes(n, cfg.nenc, enc_hw, generator)  # (n, nenc, H, W)
            if not cfg.allow_overlap:
                ctx = ctx & ~tgt.any(dim=1, keepdim=True)  # (n, nenc, H, W)
            return ctx.flatten(2).sum(-1).ge(cfg.min_keep).all(dim=1), (tgt, ctx)  # (n,) accepted

        drawn = _rejection_sample(B, cfg.max_attempts, draw, "2D masks (min_keep)")
        if drawn is None:
            raise RuntimeError(
                f"MultiBlockMaskGenerator2D: no context block with >= min_keep={cfg.min_keep} tokens after "
                f"{cfg.max_attempts} attempts on grid {(self.height, self.width)} with target block {pred_hw} x "
                f"npred={cfg.npred} and context block {enc_hw}; lower min_keep/pred_mask_scale/npred or raise "
                f"enc_mask_scale"
            )
        targets, context = drawn  # (B, npred, H, W), (B, nenc, H, W)

        M = pred_hw[0] * pred_hw[1]  # every target block has exactly h * w tokens
        tgt_rows = targets.transpose(0, 1).reshape(cfg.npred * B, N)  # (B, npred, H, W) -> (npred*B, H*W)
        ctx_rows = context.transpose(0, 1).reshape(cfg.nenc * B, N)  # (B, nenc, H, W) -> (nenc*B, H*W)
        K = int(ctx_rows.sum(-1).min())  # collate: truncate to the shortest context row of the batch
        return MaskBatch2D(
            context=_rows_to_indices(ctx_rows, K).view(cfg.nenc, B, K),  # (nenc*B, K) -> (nenc, B, K)
            targets=_rows_to_indices(tgt_rows, M).view(cfg.npred, B, M),  # (npred*B, M) -> (npred, B, M)
        )

    def _meta_call(self, batch_size: int, generator: torch.Generator | None) -> MaskBatch2D:
        """Meta's I-JEPA ``MaskCollator.__call__`` (see ``MultiBlockMaskConfig2D.meta_compatible_masks``)."""
        cfg, B, N, H, W = self.config, batch_size, self.num_tokens, self.height, self.width
        if H < 2 or W < 2:
            raise ValueError(f"grid_size={(H, W)}: expected at least 2 x 2 with meta_compatible_masks (Meta's blocks "
                             "are at most (H - 1) x (W - 1))")
        pred_hw, enc_hw = self.block_sizes(generator)
        for what, hw in (("target", pred_hw), ("context", enc_hw)):
            if hw[0] * hw[1] <= cfg.min_keep:  # Meta's collator would loop forever on this batch
                raise RuntimeError(
                    f"MultiBlockMaskGenerator2D(meta_compatible_masks=True): a {what} block of {hw[0]} x {hw[1]} "
                    f"tokens on grid {(H, W)} can never keep more than min_keep={cfg.min_keep} tokens; lower "
                    f"min_keep or raise {'pred' if what == 'target' else 'enc'}_mask_scale"
                )
        targets = _meta_boxes(B, cfg.npred, H, W, pred_hw, generator)  # (B, npred, H, W)
        context = torch.zeros(B, cfg.nenc, H, W, dtype=torch.bool)
        for j in range(cfg.nenc):  # each context block: Meta's per-sample loop, run for every pending sample at once
            pending = torch.arange(B)
            failures = torch.zeros(B, dtype=torch.long)
            while pending.numel():
                block = _meta_boxes(pending.numel(), 1, H, W, enc_hw, generator)[:, 0]  # (n, H, W)
                if not cfg.allow_overlap:
                    # targets [0, npred - failures // 20) still constrain the block; the rest were dropped
                    active = torch.arange(cfg.npred) < (cfg.npred - failures[pending] // META_TIMEOUT)[:, None]
                    cut = (targets[pending] & active[:, :, None, None]).any(dim=1)  # (n, H, W)
                    block = block & ~cut
                ok = block.flatten(1).sum(-1) > cfg.min_keep  # (n,) Meta keeps strictly more than min_keep
                context[pending[ok], j] = block[ok]
                failures[pending[~ok]] += 1
                pending = pending[~ok]
        M = pred_hw[0] * pred_hw[1]
        tgt_rows = targets.transpose(0, 1).reshape(cfg.npred * B, N)  # (B, npred, H, W) -> (npred*B, H*W)
        ctx_rows = context.transpose(0, 1).reshape(cfg.nenc * B, N)  # (B, nenc, H, W) -> (nenc*B, H*W)
        K = int(ctx_rows.sum(-1).min())  # Meta's collate: the shortest context mask of the batch
        return MaskBatch2D(
            context=_rows_to_indices(ctx_rows, K).view(cfg.nenc, B, K),  # (nenc*B, K) -> (nenc, B, K)
            targets=_rows_to_indices(tgt_rows, M).view(cfg.npred, B, M),  # (npred*B, M) -> (npred, B, M)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(grid_size={(self.height, self.width)}, config={self.config})"


class MultiBlockMaskGenerator3D:
    """V-JEPA / V-JEPA 2 multi-block masks on a ``(T, H, W)`` token grid.

    For each family, per batch: one block size ``(t, h, w)`` is drawn (temporal scale, spatial
    scale, aspect ratio). Per sample: ``num_blocks`` blocks are placed uniformly (corners drawn
    from ``[0, T - t] x [0, H - h] x [0, W - w]`` inclusive) and their union -- plus the time
    steps beyond ``max_temporal_keep`` -- is the target; the context is the complement. A sample
    with an empty context is redrawn. Context and target rows are each truncated to the
    shortest row of the batch (first tokens in raster order, as Meta), and the context further
    to ``max_keep`` if set.

    Args:
        grid_size: ``(T, H, W)`` in tokens, ``T = frames // tubelet_size``, ``H = height // patch``.
        config: the mask families; defaults to V-JEPA 2's short-range + long-range.

    Example::

        gen = MultiBlockMaskGenerator3D((8, 16, 16))  # 16 frames, tubelet 2, 256 px, patch 16
        short, long = gen(batch_size=4, generator=torch.Generator().manual_seed(0))
        short.context.shape, short.target.shape  # (4, K), (4, M)
    """

    def __init__(self, grid_size: tuple[int, int, int], config: MultiBlockMaskConfig3D | None = None) -> None:
        self.duration, self.height, self.width = _check_grid(grid_size, 3, "(time, height, width)")
        self.config = config if config is not None else MultiBlockMaskConfig3D()
        if not isinstance(self.config, MultiBlockMaskConfig3D):
            raise ValueError(f"config={self.config!r}: expected a MultiBlockMaskConfig3D")

    @property
    def num_tokens(self) -> int:
        return self.duration * self.height * self.width

    def _sample_size(self, fam: MaskFamily3D, generator: torch.Generator | None) -> tuple[int, int, int]:
        t = max(1, int(self.duration * _uniform(*fam.temporal_scale, generator)))
        h, w = _draw_block_hw(self.height, self.width, fam.spatial_scale, fam.aspect_ratio, generator)
        return min(t, self.duration), h, w

    def _family(self, fam: MaskFamily3D, B: int, generator: torch.Generator | None) -> MaskPair:
        T, H, W = self.duration, self.height, self.width
        t, h, w = self._sample_size(fam, generator)
        max_ctx_t = max(1, int(T * fam.max_temporal_keep))  # context spans time steps [0, max_ctx_t)

        def draw(n: int) -> tuple[Tensor, tuple[Tensor]]:
            k = fam.num_blocks
            in_t = _interval(n, k, T, t, generator)  # (n, k, T)
            in_h = _interval(n, k, H, h, generator)  # (n, k, H)
            in_w = _interval(n, k, W, w, generator)  # (n, k, W)
            blocks = in_t[..., :, None, None] & in_h[..., None, :, None] & in_w[..., None, None, :]  # (n, k, T, H, W)
            tgt = blocks.any(dim=1)  # (n, T, H, W)
            tgt[:, max_ctx_t:] = True
            return ~tgt.flatten(1).all(dim=1), (tgt,)  # (n,) accepted: a non-empty context

        drawn = _rejection_sample(B, self.config.max_attempts, draw, "3D masks (empty context)")
        if drawn is None:
            raise RuntimeError(
                f"MultiBlockMaskGenerator3D: empty context after {self.config.max_attempts} attempts on grid "
                f"{(T, H, W)} with {fam.num_blocks} blocks of size {(t, h, w)}; lower num_blocks or spatial_scale"
            )
        (target,) = drawn  # (B, T, H, W)

        tgt_rows = target.view(B, -1)  # (B, T, H, W) -> (B, N)
        ctx_rows = ~tgt_rows  # (B, N)
        K = int(ctx_rows.sum(-1).min())  # collate: truncate to the shortest row of the batch
        if fam.max_keep is not None:
            K = min(K, fam.max_keep)
        M = int(tgt_rows.sum(-1).min())
        return MaskPair(context=_rows_to_indices(ctx_rows, K), target=_rows_to_indices(tgt_rows, M))

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> list[MaskPair]:
        """Sample masks for ``batch_size`` samples: one :class:`MaskPair` per family, in config order."""
        check_positive(batch_size=batch_size)
        return [self._family(fam, batch_size, generator) for fam in self.config.families]

    def __repr__(self) -> str:
        grid = (self.duration, self.height, self.width)
        return f"{type(self).__name__}(grid_size={grid}, config={self.config})"
