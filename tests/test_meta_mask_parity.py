"""Our mask samplers against the statistics of Meta's collators (``tests/fixtures/meta/meta_mask_stats.json``).

The fixture holds what Meta's I-JEPA ``MaskCollator`` (``src/masks/multiblock.py``) and V-JEPA 2 ``MaskCollator``
(``src/masks/multiseq_multiblock3d.py``) produced over a few hundred batches of 32 (``generate_mask_stats.py``; the
statistics are computed by that script's ``mask_statistics_2d`` / ``mask_statistics_3d``, used here on ours).
With ``meta_compatible_masks`` our I-JEPA sampler must follow Meta's law; without it, it keeps its documented
difference (more context, the last row and column used).
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from hf_jepa.masks import (
    MaskFamily3D,
    MultiBlockMaskConfig2D,
    MultiBlockMaskConfig3D,
    MultiBlockMaskGenerator2D,
    MultiBlockMaskGenerator3D,
)

FIXTURES = Path(__file__).parent / "fixtures" / "meta"
META = json.loads((FIXTURES / "meta_mask_stats.json").read_text())
_spec = importlib.util.spec_from_file_location("meta_mask_stats", FIXTURES / "generate_mask_stats.py")
stats_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stats_mod)

SIGMAS = 4.0  # mean sizes: within 4 standard errors of the difference
POSITION_TOL = 0.06  # per-position frequencies (Meta vs ours, ~9,600 samples each): largest gap seen 0.025
LAW_TV = 0.03  # total variation between block-size laws from 20,000 draws each: seen 0.005


def ijepa_masks(grid: int, meta_compatible: bool, seed: int = 1) -> tuple[dict, MultiBlockMaskGenerator2D]:
    config = MultiBlockMaskConfig2D(**{k: v for k, v in META["ijepa"][f"grid{grid}"]["config"].items()},
                                    meta_compatible_masks=meta_compatible)
    gen = MultiBlockMaskGenerator2D((grid, grid), config)
    rng = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(META["ijepa"][f"grid{grid}"]["batches"]):
        masks = gen(META["batch_size"], generator=rng)
        batches.append((masks.context, masks.targets))
    return stats_mod.mask_statistics_2d(batches, grid, grid), gen


def mean_gap_in_sigmas(ours: dict, meta: dict, key: str) -> float:
    se = ((ours[f"{key}_std"] ** 2 + meta[f"{key}_std"] ** 2) / meta.get("batches", 300)) ** 0.5
    return abs(ours[f"{key}_mean"] - meta[f"{key}_mean"]) / max(se, 1e-9)


def total_variation(a: dict[str, float], b: dict[str, float]) -> float:
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def block_size_laws(gen: MultiBlockMaskGenerator2D, draws: int) -> tuple[dict[str, float], dict[str, float]]:
    rng = torch.Generator().manual_seed(3)
    target, context = Counter(), Counter()
    for _ in range(draws):
        (th, tw), (ch, cw) = gen.block_sizes(rng)
        target[f"{th}x{tw}"] += 1
        context[f"{ch}x{cw}"] += 1
    return {k: v / draws for k, v in target.items()}, {k: v / draws for k, v in context.items()}


@pytest.fixture(scope="module", params=[14, 16], ids=["grid14", "grid16"])
def meta_compatible(request) -> tuple[int, dict, MultiBlockMaskGenerator2D]:
    stats, gen = ijepa_masks(request.param, True)
    return request.param, stats, gen


def test_meta_compatible_sizes_and_coverage_follow_metas_collator(meta_compatible) -> None:
    grid, ours, _ = meta_compatible
    meta = META["ijepa"][f"grid{grid}"]
    assert mean_gap_in_sigmas(ours, meta, "context_len") <= SIGMAS
    assert mean_gap_in_sigmas(ours, meta, "target_len") <= SIGMAS
    assert meta["context_touches_last_row_or_col"] == ours["context_touches_last_row_or_col"] == 0.0
    assert meta["target_touches_last_row_or_col"] == ours["target_touches_last_row_or_col"] == 0.0
    for key in ("context_position_freq", "target_position_freq"):
        gap = (torch.tensor(ours[key]) - torch.tensor(meta[key])).abs().max()
        assert gap <= POSITION_TOL, (key, float(gap))


def test_meta_compatible_per_sample_context_matches_metas(meta_compatible) -> None:
    """Before the batch truncation (batches of one sample are not truncated)."""
    grid, _, gen = meta_compatible
    meta = META["ijepa"][f"grid{grid}"]
    rng = torch.Generator().manual_seed(4)
    sizes = torch.tensor([gen(1, generator=rng).context.shape[-1] for _ in range(1500)], dtype=torch.float64)
    se = (sizes.var() / sizes.numel() + meta["context_size_per_sample_std"] ** 2 / meta["context_size_samples"]) ** 0.5
    assert abs(float(sizes.mean()) - meta["context_size_per_sample_mean"]) <= SIGMAS * float(se)


def test_meta_compatible_block_size_law_is_metas(meta_compatible) -> None:
    """The joint law of scale and aspect ratio: one shared draw, so bigger target blocks are taller, and the
    context block is (H - 1) x (W - 1) on Meta's grids."""
    grid, ours, gen = meta_compatible
    meta = META["ijepa"][f"grid{grid}"]
    target, context = block_size_laws(gen, 20_000)
    assert total_variation(target, meta["target_hw_law"]) <= LAW_TV
    assert context == meta["context_hw_law"] == {f"{grid - 1}x{grid - 1}": 1.0}
    assert set(ours["target_hw_hist"]) <= set(meta["target_hw_law"])


def test_our_fixed_sampler_keeps_its_documented_difference() -> None:
    """Without the switch: the last row and column are used, the scale and aspect draws are independent, and
    the context is larger than Meta's (docs/pretraining.md, "our masks vs Meta's")."""
    meta = META["ijepa"]["grid14"]
    ours, gen = ijepa_masks(14, False)
    assert ours["context_touches_last_row_or_col"] > 0.5 and ours["target_touches_last_row_or_col"] > 0.1
    assert ours["context_len_mean"] - meta["context_len_mean"] > 5.0  # measured: +8.2 tokens at batch 32
    assert mean_gap_in_sigmas(ours, meta, "target_len") <= SIGMAS  # the target blocks' sizes stay Meta's
    target, context = block_size_laws(gen, 5_000)
    assert total_variation(target, meta["target_hw_law"]) > 0.2
    assert context != meta["context_hw_law"]  # ours may span the whole grid


def test_meta_compatible_refuses_a_grid_where_metas_collator_never_ends() -> None:
    gen = MultiBlockMaskGenerator2D((4, 4), MultiBlockMaskConfig2D(meta_compatible_masks=True))
    with pytest.raises(RuntimeError, match="min_keep=10"):
        gen(2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="meta_compatible_masks='yes': expected true or false"):
        MultiBlockMaskConfig2D(meta_compatible_masks="yes")


def test_vjepa2_multiblock3d_matches_metas_collator() -> None:
    """V-JEPA 2's two mask families (8 blocks of 0.15, 2 of 0.7) on the 8 x 16 x 16 grid of 16 frames at 256 px."""
    meta = META["vjepa2"]
    config = MultiBlockMaskConfig3D(families=tuple(MaskFamily3D.from_dict(m) for m in meta["masks"]))
    gen = MultiBlockMaskGenerator3D(tuple(meta["grid"]), config)
    rng = torch.Generator().manual_seed(0)
    batches = [[(p.context, p.target) for p in gen(meta["batch_size"], generator=rng)]
               for _ in range(meta["batches"])]
    num_tokens = meta["grid"][0] * meta["grid"][1] * meta["grid"][2]
    for ours, theirs in zip(stats_mod.mask_statistics_3d(batches, num_tokens), meta["families"], strict=True):
        theirs = {**theirs, "batches": meta["batches"]}
        assert mean_gap_in_sigmas(ours, theirs, "context_len") <= SIGMAS
        assert mean_gap_in_sigmas(ours, theirs, "target_len") <= SIGMAS
        gap = (torch.tensor(ours["target_position_freq"]) - torch.tensor(theirs["target_position_freq"])).abs().max()
        assert gap <= 2 * POSITION_TOL


def test_pretraining_flag_switches_the_sampler_to_metas_law() -> None:
    """`--meta_compatible_masks` reaches the pretraining mask sampler: with it, as Meta's collator, no context token
    lies in the grid's last row or column (`context_touches_last_row_or_col` 0 in the fixture); without it ours uses
    them."""
    from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig

    from hf_jepa.pretraining import mask_sampler

    config = ImageJepaConfig.from_preset("tiny", image_size=224, patch_size=16)  # Meta's 14 x 14 grid
    h = w = config.grid_size  # square grid of patches
    batch = {"pixel_values": torch.zeros(8, 3, 1, 1)}  # the sampler reads only the batch size

    def touches_last_row_or_col(meta_compatible: bool) -> float:
        prepare = mask_sampler(config, seed=0, process_index=0, meta_compatible_masks=meta_compatible)
        hits = []
        for step in range(20):
            context = prepare(batch, step)["context_mask"]  # (B, K) flat token indices
            hits.append(((context // w == h - 1) | (context % w == w - 1)).any(1).float().mean())
        return float(torch.stack(hits).mean())

    assert META["ijepa"]["grid14"]["context_touches_last_row_or_col"] == 0.0  # Meta's collator, for reference
    assert touches_last_row_or_col(True) == 0.0
    assert touches_last_row_or_col(False) > 0.2
