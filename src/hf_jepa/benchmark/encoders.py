"""Our encoders vs transformers' `VJEPA2Model` / `IJepaModel` on identical weights and inputs.

`encoder_comparison` asserts equal outputs in fp32, then times both forwards interleaved with a GEMM
(`hf_jepa.benchmark.timing`) and reads their achieved matmul FLOP/s against its rate. On CUDA the encoders are timed
under bf16 autocast (the GEMM's precision; fp32 would be read against a rate it cannot reach). `versions` records the
libraries the numbers depend on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hf_jepa.benchmark.timing import time_interleaved, vit_forward_flops

logger = logging.getLogger(__name__)

__all__ = ["build_reference_encoder", "encoder_comparison", "versions", "vjepa2_1_comparison"]


def build_reference_encoder(family: str, preset: str, *, seed: int = 0) -> tuple[nn.Module, nn.Module, Any]:
    """A transformers `VJEPA2Model` / `IJepaModel` at our preset's sizes with random weights, and ours converted
    from it (`hf_jepa.convert.convert_transformers_model`): identical weights.

    Returns:
        (reference, ours_encoder, our_config); both modules in eval mode.
    """
    from transformers import IJepaConfig, IJepaModel, VJEPA2Config, VJEPA2Model

    from hf_jepa.convert import convert_transformers_model
    from hf_jepa.modeling.configuration_easy_ijepa import IJEPA_PRESETS
    from hf_jepa.modeling.configuration_easy_vjepa2 import VJEPA2_PRESETS

    torch.manual_seed(seed)
    if family == "vjepa2":
        p = VJEPA2_PRESETS[preset]
        ref_cfg = VJEPA2Config(
            hidden_size=p["hidden_size"], num_hidden_layers=p["num_hidden_layers"],
            num_attention_heads=p["num_attention_heads"], mlp_ratio=p["intermediate_size"] / p["hidden_size"],
            crop_size=p["image_size"], patch_size=p["patch_size"], frames_per_clip=p["num_frames"],
            pred_hidden_size=p["predictor_hidden_size"], pred_num_hidden_layers=1,
            pred_num_attention_heads=p["predictor_num_attention_heads"], attn_implementation="sdpa",
        )
        ref = VJEPA2Model(ref_cfg).eval()
    elif family == "ijepa":
        p = IJEPA_PRESETS[preset]
        ref_cfg = IJepaConfig(
            hidden_size=p["hidden_size"], num_hidden_layers=p["num_hidden_layers"],
            num_attention_heads=p["num_attention_heads"], intermediate_size=p["intermediate_size"],
            image_size=p["image_size"], patch_size=p["patch_size"], layer_norm_eps=1e-6, attn_implementation="sdpa",
        )
        ref = IJepaModel(ref_cfg).eval()
    else:
        raise ValueError(f"family={family!r}: expected 'vjepa2' or 'ijepa'")
    with torch.no_grad():  # LayerNorms and biases away from their 1 / 0 init, so equal outputs mean something
        for param in ref.parameters():
            if param.dim() == 1:
                param.add_(0.1 * torch.randn_like(param))
    converted = convert_transformers_model(ref)
    ours = converted.target_encoder if family == "vjepa2" else converted
    return ref, ours.eval(), ours.config


def encoder_comparison(
    family: str,
    preset: str,
    *,
    batch_size: int,
    device: torch.device | str,
    gemm_size: int = 2048,
    warmup: int,
    repeats: int,
    atol: float = 1e-4,
) -> dict[str, float]:
    """Forward of our encoder vs transformers' on the same weights and input; raises if the outputs differ.

    Returns:
        dict with `speedup` (reference median / ours), the medians, `max_abs_diff`, `flops`, achieved FLOP/s and
        `matmul_fraction` of both, against `matmul_flops_per_s` of a (gemm_size)^2 GEMM timed interleaved with them.
    """
    device = torch.device(device)
    gemm_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    ref, ours, cfg = build_reference_encoder(family, preset)
    ref, ours = ref.to(device), ours.to(device)
    gen = torch.Generator().manual_seed(1)
    size = cfg.image_size
    if family == "vjepa2":
        x = torch.randn(batch_size, cfg.num_frames, cfg.num_channels, size, size, generator=gen).to(device)
        tokens = (cfg.num_frames // cfg.tubelet_size) * (size // cfg.patch_size) ** 2
        patch_volume = cfg.num_channels * cfg.tubelet_size * cfg.patch_size**2

        def run_ref() -> torch.Tensor:
            return ref.encoder(pixel_values_videos=x).last_hidden_state

        def run_ours() -> torch.Tensor:
            return ours(x).last_hidden_state
    else:
        x = torch.randn(batch_size, cfg.num_channels, size, size, generator=gen).to(device)
        tokens = (size // cfg.patch_size) ** 2
        patch_volume = cfg.num_channels * cfg.patch_size**2

        def run_ref() -> torch.Tensor:
            return ref(pixel_values=x).last_hidden_state

        def run_ours() -> torch.Tensor:
            return ours(x).last_hidden_state

    def in_timing_dtype(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        # On CUDA both encoders are timed under bf16 autocast, the precision of the GEMM rate they are read against.
        def run() -> torch.Tensor:
            with torch.autocast(device.type, dtype=gemm_dtype, enabled=device.type == "cuda"):
                return fn()
        return run

    run_ref_t, run_ours_t = in_timing_dtype(run_ref), in_timing_dtype(run_ours)
    with torch.inference_mode():
        expected, got = run_ref(), run_ours()
        diff = float((expected - got).abs().max())
        if expected.shape != got.shape or not diff <= atol:
            raise AssertionError(f"{family}/{preset}: outputs differ from transformers' (max |diff| {diff} > {atol})")
        diff_timed = float((run_ref_t().float() - run_ours_t().float()).abs().max())
        # The GEMM runs interleaved with both encoders, so the rate they are compared with saw the same load.
        a = torch.randn(gemm_size, gemm_size, generator=gen).to(device, gemm_dtype)
        t = time_interleaved({"transformers": run_ref_t, "ours": run_ours_t, "gemm": lambda: a @ a}, device=device,
                             warmup=warmup, repeats=repeats)
    gemm_flops_per_s = 2.0 * gemm_size**3 / t["gemm"].median_s
    flops = vit_forward_flops(tokens=tokens, hidden_size=cfg.hidden_size, num_layers=cfg.num_hidden_layers,
                              intermediate_size=cfg.intermediate_size, patch_volume=patch_volume,
                              batch_size=batch_size)
    ours_s, ref_s = t["ours"].median_s, t["transformers"].median_s
    out = {
        "batch_size": batch_size, "tokens": tokens, "max_abs_diff": diff, "timed_dtype": str(gemm_dtype),
        "max_abs_diff_timed_dtype": diff_timed, "flops": flops,
        "ours_s": ours_s, "transformers_s": ref_s, "matmul_flops_per_s": gemm_flops_per_s, "speedup": ref_s / ours_s,
        "ours_flops_per_s": flops / ours_s, "transformers_flops_per_s": flops / ref_s,
        "ours_matmul_fraction": flops / ours_s / gemm_flops_per_s,
        "transformers_matmul_fraction": flops / ref_s / gemm_flops_per_s,
    }
    logger.info("encoder %s/%s: ours %.4g s, transformers %.4g s, %.2fx, %.0f%% of matmul rate", family, preset,
                ours_s, ref_s, out["speedup"], 100 * out["ours_matmul_fraction"])
    return out


def vjepa2_1_encoders(preset: str, *, image_size: int, num_frames: int, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Our V-JEPA 2.1 encoder and our V-JEPA 2 encoder at the V-JEPA 2 preset's sizes, holding the same weights.

    The 2.0 encoder takes the 2.1 one's patch embedding and blocks, `norms_block[-1]` as its final norm and the
    interleaved RoPE layout (`rope_interleave_fix`); the 2.1 video modality embedding is zeroed and its RoPE
    reference grid is the input grid (interpolation by a factor of 1, still computed), so both give the same output.
    For depths outside Meta's level table the levels are the last blocks of each quarter.

    Returns:
        (vjepa2_1, vjepa2) encoders in eval mode.
    """
    from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
    from hf_jepa.modeling.configuration_easy_vjepa2_1 import HIERARCHICAL_LAYERS, VideoJepa21Config
    from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaModel
    from hf_jepa.modeling.modeling_easy_vjepa2_1 import VideoJepa21Model

    torch.manual_seed(seed)
    old = VideoJepaConfig.from_preset(preset, image_size=image_size, num_frames=num_frames, rope_interleave_fix=True)
    depth = old.num_hidden_layers
    levels = HIERARCHICAL_LAYERS.get(depth) or sorted({max(0, depth * q // 4 - 1) for q in (1, 2, 3, 4)})
    fields = {k: v for k, v in old.to_dict().items() if k in ("image_size", "patch_size", "num_frames",
              "tubelet_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "predictor_hidden_size", "predictor_num_hidden_layers", "predictor_num_attention_heads",
              "predictor_intermediate_size")}
    new = VideoJepa21Config(**fields, hierarchical_layers=levels,
                            rope_reference_grid_size=image_size // old.patch_size)
    v21, v20 = VideoJepa21Model(new).eval(), VideoJepaModel(old).eval()
    with torch.no_grad():
        for param in v21.parameters():  # LayerNorms and biases away from their 1 / 0 init
            if param.dim() == 1:
                param.add_(0.1 * torch.randn_like(param))
        v21.video_mod_embed.zero_()
        state = {k: v for k, v in v21.state_dict().items() if k.startswith(("patch_embed.", "blocks."))}
        last = len(levels) - 1
        state.update({"norm.weight": v21.norms_block[last].weight, "norm.bias": v21.norms_block[last].bias})
        v20.load_state_dict(state)
    return v21, v20


def vjepa2_1_comparison(preset: str, *, image_size: int, num_frames: int, batch_size: int,
                        device: torch.device | str, warmup: int, repeats: int, atol: float = 1e-4) -> dict[str, float]:
    """Forward time of our V-JEPA 2.1 encoder vs our V-JEPA 2 encoder at the same size (`vjepa2_1_encoders`):
    checks the outputs agree (fp32), then times both interleaved (bf16 autocast on CUDA).

    Returns:
        dict with `ratio` (2.1 median / 2.0 median: 1.0 = the same speed), both medians, `max_abs_diff`, `tokens`.
    """
    device = torch.device(device)
    v21, v20 = vjepa2_1_encoders(preset, image_size=image_size, num_frames=num_frames)
    v21, v20 = v21.to(device), v20.to(device)
    cfg = v21.config
    x = torch.randn(batch_size, num_frames, cfg.num_channels, image_size, image_size,
                    generator=torch.Generator().manual_seed(1)).to(device)

    def timed(model: nn.Module) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                return model(x).last_hidden_state
        return run

    with torch.inference_mode():
        diff = float((v21(x).last_hidden_state - v20(x).last_hidden_state).abs().max())
        if not diff <= atol:
            raise AssertionError(f"vjepa2_1/{preset}: differs from the equivalent V-JEPA 2 encoder (max |diff| {diff} "
                                 f"> {atol})")
        t = time_interleaved({"vjepa2_1": timed(v21), "vjepa2": timed(v20)}, device=device, warmup=warmup,
                             repeats=repeats)
    out = {"batch_size": batch_size, "image_size": image_size, "num_frames": num_frames,
           "tokens": (num_frames // cfg.tubelet_size) * (image_size // cfg.patch_size) ** 2, "max_abs_diff": diff,
           "timed_dtype": "bfloat16" if device.type == "cuda" else "float32",
           "vjepa2_1_s": t["vjepa2_1"].median_s, "vjepa2_s": t["vjepa2"].median_s,
           "ratio": t["vjepa2_1"].median_s / t["vjepa2"].median_s}
    logger.info("V-JEPA 2.1 vs 2.0 encoder %s at %d px x %d frames: %.4g vs %.4g s (%.3fx)", preset, image_size,
                num_frames, out["vjepa2_1_s"], out["vjepa2_s"], out["ratio"])
    return out


def versions() -> dict[str, str]:
    """Versions of the libraries the numbers depend on, and the CPU thread count."""
    import accelerate
    import transformers

    import hf_jepa

    out = {"torch": torch.__version__, "transformers": transformers.__version__,
           "accelerate": accelerate.__version__, "hf_jepa": getattr(hf_jepa, "__version__", "unknown"),
           "torch_threads": str(torch.get_num_threads()), "cpu_count": str(os.cpu_count())}
    if torch.cuda.is_available():
        out["cuda"] = str(torch.version.cuda)
        out["gpu"] = torch.cuda.get_device_name()
    return out
