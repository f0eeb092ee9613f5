"""Property tests for the I-JEPA (2D) and V-JEPA (3D) multi-block mask generators."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_jepa.masks import (
    MaskBatch2D,
    MaskFamily3D,
    MaskPair,
    MultiBlockMaskConfig2D,
    MultiBlockMaskConfig3D,
    MultiBlockMaskGenerator2D,
    MultiBlockMaskGenerator3D,
)

FAST = settings(max_examples=25, deadline=None, database=None)  # no .hypothesis/ in the repo


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_index_rows(x: torch.Tensor, num_tokens: int) -> None:
    """Each row: long, within [0, N), strictly increasing (sorted and unique)."""
    assert x.dtype == torch.long
    assert x.numel() > 0
    assert int(x.min()) >= 0 and int(x.max()) < num_tokens
    assert bool((x[..., 1:] > x[..., :-1]).all())


def _is_rectangle(idx: torch.Tensor, width: int) -> bool:
    rows, cols = idx // width, idx % width
    area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    return int(area) == idx.numel()


# ----------------------------------------------------------------------------------------------
# 2D (I-JEPA)

scale_pairs = st.tuples(st.floats(0.05, 0.4), st.floats(0.0, 0.3)).map(lambda p: (p[0], min(1.0, p[0] + p[1])))
enc_pairs = st.tuples(st.floats(0.6, 1.0), st.floats(0.0, 0.4)).map(lambda p: (p[0], min(1.0, p[0] + p[1])))
ar_pairs = st.tuples(st.floats(0.3, 2.0), st.floats(0.0, 1.5)).map(lambda p: (p[0], p[0] + p[1]))

configs_2d = st.builds(
    MultiBlockMaskConfig2D,
    enc_mask_scale=enc_pairs,
    pred_mask_scale=scale_pairs,
    aspect_ratio=ar_pairs,
    nenc=st.integers(1, 2),
    npred=st.integers(1, 4),
    min_keep=st.integers(1, 3),
    allow_overlap=st.booleans(),
)


@FAST
@given(
    height=st.integers(4, 16),
    width=st.integers(4, 16),
    batch_size=st.integers(1, 6),
    cfg=configs_2d,
    seed=st.integers(0, 2**31 - 1),
)
def test_2d_shapes_bounds_no_overlap(height: int, width: int, batch_size: int, cfg, seed: int) -> None:
    gen = MultiBlockMaskGenerator2D((height, width), cfg)
    out = gen(batch_size, generator=_gen(seed))
    assert isinstance(out, MaskBatch2D)
    n = height * width
    assert out.context.shape[:2] == (cfg.nenc, batch_size)
    assert out.targets.shape[:2] == (cfg.npred, batch_size)
    assert out.context.shape[2] >= cfg.min_keep  # truncated to the batch min, never below min_keep
    _assert_index_rows(out.context, n)
    _assert_index_rows(out.targets, n)

    # one target block size per batch, every target is a full rectangle of that size
    for row in out.targets.reshape(-1, out.targets.shape[-1]):  # (npred*B, M)
        assert _is_rectangle(row, width)

    for b in range(batch_size):
        tgt = set(out.targets[:, b].flatten().tolist())
        for e in range(cfg.nenc):
            ctx = set(out.context[e, b].tolist())
            if not cfg.allow_overlap:
                assert not ctx & tgt


@FAST
@given(batch_size=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_2d_defaults_on_imagenet_grid(batch_size: int, seed: int) -> None:
    gen = MultiBlockMaskGenerator2D((14, 14))  # 224 px, patch 16, Meta's defaults
    out = gen(batch_size, generator=_gen(seed))
    assert out.context.shape[:2] == (1, batch_size)
    assert out.targets.shape[:2] == (4, batch_size)
    m = out.targets.shape[-1]
    assert int(0.15 * 196 * 0.7) <= m <= int(0.2 * 196 * 1.3)  # ~15-20% of the grid per block
    assert out.context.shape[-1] >= 10
    for b in range(batch_size):
        assert not set(out.context[0, b].tolist()) & set(out.targets[:, b].flatten().tolist())


@FAST
@given(seed=st.integers(0, 2**31 - 1), batch_size=st.integers(1, 5))
def test_2d_deterministic_per_seed(seed: int, batch_size: int) -> None:
    gen = MultiBlockMaskGenerator2D((9, 11), MultiBlockMaskConfig2D(min_keep=2))
    a, b = gen(batch_size, generator=_gen(seed)), gen(batch_size, generator=_gen(seed))
    assert torch.equal(a.context, b.context) and torch.equal(a.targets, b.targets)


def test_2d_different_seeds_differ() -> None:
    gen = MultiBlockMaskGenerator2D((14, 14))
    outs = [gen(4, generator=_gen(s)) for s in range(4)]
    assert any(not torch.equal(outs[0].targets, o.targets) for o in outs[1:])


def test_2d_allow_overlap_context_is_a_block() -> None:
    cfg = MultiBlockMaskConfig2D(allow_overlap=True, enc_mask_scale=(0.3, 0.3), min_keep=1)
    out = MultiBlockMaskGenerator2D((10, 10), cfg)(batch_size=1, generator=_gen(0))
    assert _is_rectangle(out.context[0, 0], 10)  # B=1: no truncation, the raw context block


def test_2d_every_position_reachable() -> None:
    """Over many draws every token (incl. the last row and column, ijepa PR #40) is in a target and a context."""
    h, w = 5, 7
    gen = MultiBlockMaskGenerator2D((h, w), MultiBlockMaskConfig2D(min_keep=2))
    g = _gen(0)
    seen_tgt, seen_ctx = torch.zeros(h * w, dtype=torch.bool), torch.zeros(h * w, dtype=torch.bool)
    for _ in range(200):
        out = gen(8, generator=g)
        seen_tgt[out.targets.flatten()] = True
        seen_ctx[out.context.flatten()] = True
    grid_tgt = seen_tgt.view(h, w)  # (N,) -> (H, W)
    assert bool(grid_tgt[-1].all()) and bool(grid_tgt[:, -1].all()), "last row/column unreachable"
    assert bool(seen_tgt.all()) and bool(seen_ctx.all())


def test_2d_block_can_cover_full_grid() -> None:
    """Scale 1.0 with aspect 1 gives a full-grid block (Meta clamped to H - 1, W - 1)."""
    cfg = MultiBlockMaskConfig2D(pred_mask_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0), npred=1, allow_overlap=True)
    out = MultiBlockMaskGenerator2D((6, 6), cfg)(2, generator=_gen(0))
    assert torch.equal(out.targets[0, 0], torch.arange(36))


def test_2d_batch_truncation_equal_lengths() -> None:
    gen = MultiBlockMaskGenerator2D((14, 14))
    g = _gen(3)
    lengths = set()
    for _ in range(10):
        out = gen(16, generator=g)
        assert out.context.dim() == 3 and out.targets.dim() == 3  # stacked: equal lengths in the batch
        lengths.add(out.context.shape[-1])
    assert len(lengths) > 1  # the collated length varies per batch


def test_2d_infeasible_raises_runtime_error() -> None:
    cfg = MultiBlockMaskConfig2D(min_keep=16, pred_mask_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0), max_attempts=5)
    with pytest.raises(RuntimeError, match="min_keep=16"):
        MultiBlockMaskGenerator2D((4, 4), cfg)(2, generator=_gen(0))


# ----------------------------------------------------------------------------------------------
# 3D (V-JEPA 2)

families = st.builds(
    MaskFamily3D,
    num_blocks=st.integers(1, 4),
    spatial_scale=scale_pairs,
    temporal_scale=st.sampled_from([(1.0, 1.0), (0.3, 0.6), (0.5, 1.0)]),
    aspect_ratio=ar_pairs,
    max_temporal_keep=st.sampled_from([1.0, 0.5]),
    max_keep=st.one_of(st.none(), st.integers(1, 50)),
)


@FAST
@given(
    grid=st.tuples(st.integers(1, 4), st.integers(3, 8), st.integers(3, 8)),
    batch_size=st.integers(1, 5),
    fams=st.lists(families, min_size=1, max_size=2),
    seed=st.integers(0, 2**31 - 1),
)
def test_3d_shapes_bounds_no_overlap(grid, batch_size: int, fams, seed: int) -> None:
    t, h, w = grid
    n = t * h * w
    gen = MultiBlockMaskGenerator3D(grid, MultiBlockMaskConfig3D(families=tuple(fams)))
    pairs = gen(batch_size, generator=_gen(seed))
    assert len(pairs) == len(fams)
    for fam, pair in zip(fams, pairs, strict=True):
        assert isinstance(pair, MaskPair)
        assert pair.context.shape[0] == pair.target.shape[0] == batch_size
        _assert_index_rows(pair.context, n)
        _assert_index_rows(pair.target, n)
        if fam.max_keep is not None:
            assert pair.context.shape[1] <= fam.max_keep
        max_ctx_t = max(1, int(t * fam.max_temporal_keep))
        assert int(pair.context.max()) < max_ctx_t * h * w  # context only in the first time steps
        for b in range(batch_size):
            assert not set(pair.context[b].tolist()) & set(pair.target[b].tolist())


@FAST
@given(seed=st.integers(0, 2**31 - 1))
def test_3d_single_sample_is_complement_and_full_temporal(seed: int) -> None:
    """B=1 (no truncation): context + target cover the grid; with temporal scale 1 the target repeats over time."""
    t, h, w = 4, 8, 8
    pairs = MultiBlockMaskGenerator3D((t, h, w))(1, generator=_gen(seed))
    assert len(pairs) == 2  # V-JEPA 2 default: short-range, long-range
    for pair in pairs:
        assert pair.context.shape[1] + pair.target.shape[1] == t * h * w
        target = torch.zeros(t * h * w, dtype=torch.bool)
        target[pair.target[0]] = True
        target = target.view(t, h, w)  # (N,) -> (T, H, W)
        assert bool((target == target[:1]).all())


def test_3d_default_families_on_vjepa2_grid() -> None:
    gen = MultiBlockMaskGenerator3D((8, 16, 16))  # 16 frames / tubelet 2, 256 px / patch 16
    short, long = gen(6, generator=_gen(0))
    n = 8 * 16 * 16
    # long-range (2 blocks of 70%) masks more than short-range (8 blocks of 15%) here
    assert long.context.shape[1] < short.context.shape[1]
    for p in (short, long):
        _assert_index_rows(p.context, n)
        _assert_index_rows(p.target, n)
        assert p.context.shape[1] + p.target.shape[1] <= n


@FAST
@given(seed=st.integers(0, 2**31 - 1), batch_size=st.integers(1, 4))
def test_3d_deterministic_per_seed(seed: int, batch_size: int) -> None:
    gen = MultiBlockMaskGenerator3D((2, 6, 6))
    a, b = gen(batch_size, generator=_gen(seed)), gen(batch_size, generator=_gen(seed))
    for pa, pb in zip(a, b, strict=True):
        assert torch.equal(pa.context, pb.context) and torch.equal(pa.target, pb.target)


def test_3d_every_position_reachable() -> None:
    t, h, w = 3, 5, 6
    fam = MaskFamily3D(num_blocks=1, spatial_scale=(0.2, 0.2), temporal_scale=(0.4, 0.4))
    gen = MultiBlockMaskGenerator3D((t, h, w), MultiBlockMaskConfig3D(families=(fam,)))
    g = _gen(0)
    seen_tgt, seen_ctx = torch.zeros(t * h * w, dtype=torch.bool), torch.zeros(t * h * w, dtype=torch.bool)
    for _ in range(300):
        (pair,) = gen(1, generator=g)  # B=1: no truncation
        seen_tgt[pair.target.flatten()] = True
        seen_ctx[pair.context.flatten()] = True
    grid = seen_tgt.view(t, h, w)  # (N,) -> (T, H, W)
    assert bool(grid[-1].all()) and bool(grid[:, -1].all()) and bool(grid[:, :, -1].all())
    assert bool(seen_tgt.all()) and bool(seen_ctx.all())


def test_3d_batch_truncation_equal_lengths() -> None:
    gen = MultiBlockMaskGenerator3D((4, 8, 8))
    g = _gen(1)
    lengths = set()
    for _ in range(10):
        for pair in gen(8, generator=g):
            assert pair.context.dim() == 2 and pair.target.dim() == 2
            lengths.add((pair.context.shape[1], pair.target.shape[1]))
    assert len(lengths) > 2


def test_3d_from_meta_yaml_dict() -> None:
    d = {
        "aspect_ratio": [0.75, 1.5],
        "full_complement": False,
        "max_keep": None,
        "max_temporal_keep": 1.0,
        "num_blocks": 8,
        "spatial_scale": [0.15, 0.15],
        "temporal_scale": [1.0, 1.0],
    }
    assert MultiBlockMaskConfig3D(families=[d]).families[0] == MultiBlockMaskConfig3D().families[0]
    with pytest.raises(ValueError, match="inv_block=True"):
        MaskFamily3D.from_dict({**d, "inv_block": True})


# ----------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    ("kwargs", "field_and_value"),
    [
        ({"pred_mask_scale": (0.3, 0.1)}, "pred_mask_scale=(0.3, 0.1): expected a (min, max) pair of numbers with "
                                          "0.0 < min <= max <= 1.0"),
        ({"enc_mask_scale": (0.0, 1.0)}, "enc_mask_scale=(0.0, 1.0)"),
        ({"enc_mask_scale": (0.5, 1.2)}, "enc_mask_scale=(0.5, 1.2)"),
        ({"aspect_ratio": (2.0, 1.0)}, "aspect_ratio=(2.0, 1.0)"),
        ({"aspect_ratio": (1.0,)}, "aspect_ratio=(1.0,)"),
        ({"nenc": 0}, "nenc=0"),
        ({"npred": 1.5}, "npred=1.5"),
        ({"min_keep": 0}, "min_keep=0"),
        ({"allow_overlap": "no"}, "allow_overlap='no'"),
    ],
)
def test_config_2d_validation_names_field(kwargs, field_and_value: str) -> None:
    with pytest.raises(ValueError) as err:
        MultiBlockMaskConfig2D(**kwargs)
    assert field_and_value in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "field_and_value"),
    [
        ({"num_blocks": 0, "spatial_scale": (0.1, 0.1)}, "num_blocks=0"),
        ({"num_blocks": 1, "spatial_scale": (0.9, 0.1)}, "spatial_scale=(0.9, 0.1)"),
        ({"num_blocks": 1, "spatial_scale": (0.1, 0.1), "temporal_scale": (0.0, 1.0)}, "temporal_scale=(0.0, 1.0)"),
        ({"num_blocks": 1, "spatial_scale": (0.1, 0.1), "max_temporal_keep": 1.5}, "max_temporal_keep=1.5"),
        ({"num_blocks": 1, "spatial_scale": (0.1, 0.1), "max_keep": 0}, "max_keep=0"),
    ],
)
def test_config_3d_validation_names_field(kwargs, field_and_value: str) -> None:
    with pytest.raises(ValueError) as err:
        MaskFamily3D(**kwargs)
    assert field_and_value in str(err.value)


def test_generator_validation() -> None:
    with pytest.raises(ValueError, match="grid_size=\\(0, 4\\)"):
        MultiBlockMaskGenerator2D((0, 4))
    with pytest.raises(ValueError, match="grid_size=\\(4, 4\\)"):
        MultiBlockMaskGenerator3D((4, 4))
    with pytest.raises(ValueError, match="min_keep=10"):
        MultiBlockMaskGenerator2D((3, 3))  # default min_keep=10 > 9 tokens
    with pytest.raises(ValueError, match="families=\\(\\)"):
        MultiBlockMaskConfig3D(families=())
    with pytest.raises(ValueError, match="batch_size=0"):
        MultiBlockMaskGenerator2D((14, 14))(0)


def test_mask_config_for_small_grids_keeps_a_quarter_of_the_frame() -> None:
    """Below 16 x 16 positions the long-range blocks shrink so the context is not a handful of positions."""
    from hf_jepa.masks import MultiBlockMaskConfig3D

    assert MultiBlockMaskConfig3D.for_grid((8, 16, 16)) == MultiBlockMaskConfig3D()
    small = MultiBlockMaskConfig3D.for_grid((4, 8, 8))
    gen = torch.Generator().manual_seed(0)
    pairs = MultiBlockMaskGenerator3D((4, 8, 8), small)(64, generator=gen)
    meta = MultiBlockMaskGenerator3D((4, 8, 8))(64, generator=torch.Generator().manual_seed(0))
    assert pairs[1].context.shape[1] >= 0.2 * 256 > meta[1].context.shape[1]
    with pytest.raises(ValueError, match="grid_size"):
        MultiBlockMaskConfig3D.for_grid((4, 8))
