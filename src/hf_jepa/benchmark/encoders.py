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

__all__ = ["build_reference_encoder", "encoder_comparison", "versions"]


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
