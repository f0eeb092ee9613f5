"""Measuring library of `scripts/benchmark.py`: ours vs the references on the same weights and inputs.

What is measured, and how:

- **Time**: `time_interleaved` runs the candidates round-robin (A, B, A, B, ...) after `warmup` calls each and
  reports the median (and min) over `repeats`. Interleaving matters on a shared CPU: background load hits both
  sides of a ratio alike. On CUDA each call is bracketed by `torch.cuda.Event`s (device time) after a sync; on CPU
  by `time.perf_counter` (wall time).
- **Matmul rate**: `matmul_rate` times a large square fp32 GEMM (bf16 on CUDA) the same way: FLOP/s = 2 n^3 / t.
- **FLOPs**: `vit_forward_flops` counts multiply-adds x 2 analytically: the patch projection, the linear layers
  (qkv, output projection, MLP) and both attention matmuls (QK^T, AV). Norms, softmax, GELU and RoPE are left
  out (they are not matmuls), so the "matmul fraction" is achieved matmul FLOP/s over the measured GEMM rate.
  On CUDA the encoders are timed under bf16 autocast (the GEMM's precision; fp32 would be read against a rate it
  cannot reach); their equality with transformers is asserted in fp32 before timing either way.
- **Peak memory**: on CUDA `torch.cuda.max_memory_allocated` minus the allocation before the call (tensors only).
  On CPU the resident set: the kernel's high-water mark (`VmHWM`) is reset through `/proc/self/clear_refs`, and
  the peak is `VmHWM` after the call minus `VmRSS` before it. glibc would otherwise serve large tensors from
  freed heap memory that is already resident (its mmap threshold grows after frees), so during the measurement
  allocations >= 64 KiB are forced to fresh `mmap`s (`mallopt`) and the heap is trimmed first. Without
  `/proc` (not Linux) `tracemalloc` is used, which only sees Python allocations: the result says which.

Everything returns plain dicts / dataclasses of floats; `scripts/benchmark.py` assembles them into results.json.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "MemoryResult",
    "Timing",
    "background_cpu_load",
    "build_reference_encoder",
    "encoder_comparison",
    "matmul_rate",
    "monitor_overhead_benchmark",
    "peak_memory",
    "time_interleaved",
    "versions",
    "vit_forward_flops",
]


# ----------------------------------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    """Seconds per call of one candidate: `median_s` / `min_s` over `times` (one entry per repeat)."""

    median_s: float
    min_s: float
    times: list[float] = field(default_factory=list)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    device: torch.device | str = "cpu",
    warmup: int = 2,
    repeats: int = 10,
) -> dict[str, Timing]:
    """Time candidates round-robin: `warmup` untimed calls each, then `repeats` rounds of one call each.

    Args:
        fns: name -> zero-argument callable (the work to time, inputs bound).
        device: where the work runs; CUDA uses events (device time), CPU `perf_counter` (wall time).
        warmup: untimed calls per candidate first (allocator, kernel selection, caches).
        repeats: timed calls per candidate.

    Returns:
        name -> `Timing`.
    """
    device = torch.device(device)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times[name].append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    out = {name: Timing(statistics.median(t), min(t), t) for name, t in times.items()}
    for name, t in out.items():
        logger.debug("%s: median %.4g s, min %.4g s over %d", name, t.median_s, t.min_s, repeats)
    return out


def matmul_rate(device: torch.device | str = "cpu", *, size: int = 2048, repeats: int = 10) -> float:
    """Measured FLOP/s of an (n x n) @ (n x n) GEMM: fp32 on CPU, bf16 on CUDA; median over `repeats`."""
    device = torch.device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device, dtype)
    b = torch.randn(size, size, generator=gen).to(device, dtype)
    with torch.inference_mode():
        t = time_interleaved({"gemm": lambda: a @ b}, device=device, warmup=2, repeats=repeats)["gemm"]
    return 2.0 * size**3 / t.median_s


def vit_forward_flops(
    *,
    tokens: int,
    hidden_size: int,
    num_layers: int,
    intermediate_size: int,
    patch_volume: int,
    batch_size: int = 1,
) -> float:
    """Matmul FLOPs (2 x multiply-adds) of one ViT encoder forward over `tokens` tokens per sample.

    Per layer: qkv (3 D^2), output projection (D^2) and MLP (2 D I) per token, plus QK^T and AV (2 N^2 D).
    The patch projection adds `patch_volume` (channels x tubelet x patch^2) x D per token.

    Returns:
        FLOPs for `batch_size` samples.
    """
    n, d = tokens, hidden_size
    linear = 2 * n * (4 * d * d + 2 * d * intermediate_size)
    attention = 2 * 2 * n * n * d
    embed = 2 * n * patch_volume * d
    return float(batch_size * (num_layers * (linear + attention) + embed))


def background_cpu_load(seconds: float = 0.5) -> float | None:
    """Fraction of all CPUs busy while this process sleeps `seconds` (other work on the machine), or None."""
    def read() -> list[int]:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:9]]

    try:
        a = read()
        time.sleep(seconds)
        b = read()
    except OSError:
        return None
    delta = [y - x for x, y in zip(a, b, strict=True)]
    total = sum(delta)
    return 1.0 - (delta[3] + delta[4]) / total if total else None  # idle + iowait


# ----------------------------------------------------------------------------------------------------------------
# memory


@dataclass
class MemoryResult:
    """Peak memory of one call in MiB above what was allocated before it; `method` says what was measured."""

    peak_mb: float
    method: str


def _proc_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


@contextlib.contextmanager
def _fresh_mmap_allocations() -> Iterator[None]:
    """glibc only: serve allocations >= 64 KiB with mmap (freed memory leaves the RSS) and trim the heap."""
    libc = None
    with contextlib.suppress(OSError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    m_mmap_threshold = -3
    ok = bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(m_mmap_threshold, 64 * 1024))
    if ok and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    try:
        yield
    finally:
        if ok:
            libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's dynamic ceiling: large blocks reuse the heap


def peak_memory(fn: Callable[[], Any], device: torch.device | str = "cpu") -> MemoryResult:
    """Peak memory of `fn()` above the memory in use before it (see the module docstring for the method)."""
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return MemoryResult((torch.cuda.max_memory_allocated(device) - before) / 2**20, "cuda_max_memory_allocated")
    with _fresh_mmap_allocations():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            before = _proc_kib("VmRSS")
        except OSError:
            before = None
        if before is not None:
            fn()
            return MemoryResult((_proc_kib("VmHWM") - before) / 1024, "rss_high_water_mark")
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return MemoryResult(peak / 2**20, "tracemalloc_python_only")


# ----------------------------------------------------------------------------------------------------------------
# encoders: transformers reference vs ours


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


# ----------------------------------------------------------------------------------------------------------------
# training steps


def _train_setup(model: nn.Module, device: torch.device) -> tuple[Any, nn.Module, torch.optim.Optimizer]:
    from accelerate import Accelerator

    from hf_jepa.training import build_optimizer

    accelerator = Accelerator(cpu=device.type == "cpu")
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.04)
    model, optimizer = accelerator.prepare(model.to(accelerator.device).train(), optimizer)
    return accelerator, model, optimizer


def pretraining_batch(family: str, preset: str, batch_size: int, device: torch.device, *,
                      num_frames: int | None = None) -> tuple[nn.Module, dict[str, Any], Callable[..., Any]]:
    """An `ImageJepaForPreTraining` / `VideoJepaForPreTraining` at `preset`, one batch with the masks pretraining
    draws (`hf_jepa.pretraining.mask_sampler`) and Meta's loss (`pretraining_loss(family, "meta")`)."""
    from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
    from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
    from hf_jepa.modeling.modeling_easy_ijepa import ImageJepaForPreTraining
    from hf_jepa.modeling.modeling_easy_vjepa2 import VideoJepaForPreTraining
    from hf_jepa.pretraining import mask_sampler
    from hf_jepa.training import pretraining_loss

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if family == "ijepa":
        cfg = ImageJepaConfig.from_preset(preset)
        model = ImageJepaForPreTraining(cfg)
        pixels = {"pixel_values": torch.randn(batch_size, 3, cfg.image_size, cfg.image_size, generator=gen)}
    else:
        cfg = VideoJepaConfig.from_preset(preset, **({"num_frames": num_frames} if num_frames else {}))
        model = VideoJepaForPreTraining(cfg)
        shape = (batch_size, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
        pixels = {"pixel_values_videos": torch.randn(shape, generator=gen)}
    batch = mask_sampler(cfg, seed=0, process_index=0)(pixels, 0)
    return model, _to(batch, device), pretraining_loss(family, "meta")


def world_model_batch(batch_size: int, num_frames: int, device: torch.device,
                      ) -> tuple[nn.Module, dict[str, Any], Callable[..., Any]]:
    """The tiny `JepaWorldModel`, one (frames, actions, states) batch and Meta's teacher-forcing + rollout loss
    (`hf_jepa.training.world_model_loss`)."""
    from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
    from hf_jepa.training import world_model_loss

    torch.manual_seed(0)
    cfg = JepaWorldModelConfig.from_preset("tiny", max_steps=max(16, num_frames))
    model = JepaWorldModel(cfg)
    gen = torch.Generator().manual_seed(0)
    size = cfg.encoder_config.image_size
    batch = {"pixel_values_videos": torch.randn(batch_size, num_frames, 3, size, size, generator=gen),
             "actions": torch.randn(batch_size, num_frames - 1, cfg.action_dim, generator=gen),
             "states": torch.randn(batch_size, num_frames, cfg.state_dim, generator=gen)}
    return model, _to(batch, device), world_model_loss


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: ([t.to(device) for t in v] if isinstance(v, list) else v.to(device)) for k, v in batch.items()}


def train_step_benchmark(model: nn.Module, batch: dict[str, Any], compute_loss: Callable[..., Any], *,
                         device: torch.device | str, warmup: int, repeats: int, ema: bool) -> dict[str, float]:
    """Samples/s and peak memory of `hf_jepa.training.train_step` (forward, backward, AdamW, EMA) on one batch.

    Returns:
        dict with `step_s` (median), `samples_per_second`, `peak_memory_mb` (one step after warm-up) and
        `memory_method`.
    """
    from hf_jepa.training import train_step

    device = torch.device(device)
    accelerator, model, optimizer = _train_setup(model, device)
    batch_size = next(v for v in batch.values() if isinstance(v, torch.Tensor)).shape[0]

    def step() -> None:
        train_step(accelerator, model, batch, optimizer, None, compute_loss=compute_loss, max_grad_norm=1.0,
                   ema_momentum=0.996 if ema else None)

    t = time_interleaved({"step": step}, device=device, warmup=warmup, repeats=repeats)["step"]
    mem = peak_memory(step, device)
    return {"batch_size": batch_size, "step_s": t.median_s, "samples_per_second": batch_size / t.median_s,
            "peak_memory_mb": mem.peak_mb, "memory_method": mem.method}


def monitor_overhead_benchmark(family: str, preset: str, batch_size: int, *, device: torch.device | str,
                               warmup: int, repeats: int, log_every: int = 10, probe_eval_samples: int = 32,
                               num_classes: int = 10) -> dict[str, float]:
    """A pretraining train step without and with what every run adds (the collapse monitors) plus an online probe,
    timed interleaved in the same process: two copies of the same model, the same batch.

    The monitored step is `train_step` with `monitored_loss(loss, [CollapseMonitor, OnlineProbe], raw_batch)`, as
    `fit` runs it. Two whole steps differ by little against the noise of a shared CPU, so the monitors' own per-step
    work (both `observe` calls on one stored output) is also timed alone. The log-time work (RankMe of a (D, D) Gram
    matrix, the probe's held-out accuracy on `probe_eval_samples` random inputs through the target encoder) is timed
    apart and spread over `log_every` steps.

    Returns:
        dict with `plain_step_s`, `monitored_step_s`, `step_ratio` (monitored / plain), `observe_s`,
        `observe_fraction` (observe_s / plain_step_s), `log_s` and `amortized_ratio`
        ((plain + observe_s + log_s / log_every) / plain).
    """
    import copy

    from hf_jepa.pretraining import pooled_target_features
    from hf_jepa.training import train_step
    from hf_jepa.training.monitors import CollapseMonitor, effective_rank_from_gram, monitored_loss
    from hf_jepa.training.objectives import PREDICTION_LOSSES
    from hf_jepa.training.online_probe import OnlineProbe

    device = torch.device(device)
    model, batch, loss = pretraining_batch(family, preset, batch_size, device)
    monitored_model = copy.deepcopy(model)
    accelerator, model, optimizer = _train_setup(model, device)
    _, monitored_model, monitored_optimizer = _train_setup(monitored_model, device)
    gen = torch.Generator().manual_seed(2)
    pixel_key = next(k for k in ("pixel_values", "pixel_values_videos") if k in batch)
    eval_inputs = torch.randn((probe_eval_samples, *batch[pixel_key].shape[1:]), generator=gen).half()
    probe = OnlineProbe(feature_dim=accelerator.unwrap_model(model).config.hidden_size, num_classes=num_classes,
                        label_key="label", eval_inputs=eval_inputs,
                        eval_labels=torch.randint(0, num_classes, (probe_eval_samples,), generator=gen),
                        encode=pooled_target_features, accelerator=accelerator, eval_batch_size=batch_size)
    collapse = CollapseMonitor(loss_fn=PREDICTION_LOSSES[family])
    raw_batch = {"label": torch.randint(0, num_classes, (batch_size,), generator=gen)}
    monitored_loss_fn = monitored_loss(loss, [collapse, probe], raw_batch)

    def plain() -> None:
        train_step(accelerator, model, batch, optimizer, None, compute_loss=loss, max_grad_norm=1.0,
                   ema_momentum=0.996)

    def monitored() -> None:
        train_step(accelerator, monitored_model, batch, monitored_optimizer, None, compute_loss=monitored_loss_fn,
                   max_grad_norm=1.0, ema_momentum=0.996)

    t = time_interleaved({"plain": plain, "monitored": monitored}, device=device, warmup=warmup, repeats=repeats)
    gram = torch.eye(probe.head[1].in_features, dtype=torch.float64)  # a (D, D) Gram: eigvalsh costs the same

    def log_work() -> None:
        effective_rank_from_gram(gram=gram)
        probe.summarize({}, accelerator=accelerator, model=monitored_model)

    log_s = time_interleaved({"log": log_work}, device=device, warmup=1, repeats=max(2, repeats // 2))["log"].median_s
    with torch.no_grad(), accelerator.autocast():
        outputs = monitored_model(**batch)

    def observe() -> None:
        with torch.no_grad(), accelerator.autocast():
            collapse.observe(outputs, batch, raw_batch)
            probe.observe(outputs, batch, raw_batch)

    observe_s = time_interleaved({"observe": observe}, device=device, warmup=2, repeats=3 * repeats)["observe"].median_s
    plain_s, monitored_s = t["plain"].median_s, t["monitored"].median_s
    out = {"batch_size": batch_size, "plain_step_s": plain_s, "monitored_step_s": monitored_s,
           "step_ratio": monitored_s / plain_s, "observe_s": observe_s, "observe_fraction": observe_s / plain_s,
           "log_s": log_s, "log_every": log_every, "probe_eval_samples": probe_eval_samples,
           "amortized_ratio": (plain_s + observe_s + log_s / log_every) / plain_s}
    logger.info("monitors %s/%s: step %.4g s -> %.4g s (%.3fx; observe alone %.3g s), log work %.3g s (%.3fx over %d "
                "steps)", family, preset, plain_s, monitored_s, out["step_ratio"], observe_s, log_s,
                out["amortized_ratio"], log_every)
    return out


# ----------------------------------------------------------------------------------------------------------------
# planning


def planning_benchmark(*, horizon: int, num_samples: int, topk: int, iterations: int, device: torch.device | str,
                       repeats: int, context_frames: int = 1, seed: int = 0) -> dict[str, float]:
    """One CEM plan (= one planned MPC action) with the tiny world model: KV-cached rollouts vs recomputing the
    whole history per rollout step (Meta's planning code); same settings, same generator seed.

    With `context_frames` T0 > 1 each rollout starts from the last T0 observed frames (an MPC history, filled by
    T0 - 1 earlier plans): the cached planner runs the shared history once per candidate batch, the recomputing one
    for every sample at every rollout step.

    Raises:
        AssertionError: the two plans differ (beyond 1e-4).

    Returns:
        dict with seconds per planned action of both, `speedup` and the max difference of the chosen actions.
    """
    import numpy as np

    from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
    from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel
    from hf_jepa.planning.configs import CEMConfig
    from hf_jepa.planning.world_model_planner import WorldModelPlanner

    torch.manual_seed(seed)
    cfg = JepaWorldModelConfig.from_preset("tiny", max_steps=max(16, horizon + 1))
    model = JepaWorldModel(cfg).eval()
    cem_cfg = CEMConfig(horizon=horizon, num_samples=num_samples, topk=topk, iterations=iterations,
                        init_std=0.5, momentum_mean=0.15, momentum_std=0.15)
    rng = np.random.default_rng(seed)
    size = cfg.encoder_config.image_size
    obs, goal = (rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(2))
    state = np.zeros(cfg.state_dim, dtype=np.float32)
    planners = {name: WorldModelPlanner(model, cem_cfg, use_cache=cache, warm_start=False,
                                        context_frames=context_frames, device=device)
                for name, cache in (("kv_cache", True), ("recompute", False))}
    goal_z = planners["kv_cache"].encode(goal)

    def plan(name: str) -> Any:
        return planners[name].plan(obs, goal, state, generator=cem_cfg.make_generator(device), goal_latents=goal_z)

    for _ in range(context_frames - 1):  # fill the observed history (same plans in both: same generator seed)
        plan("kv_cache"), plan("recompute")
    cached, full = plan("kv_cache"), plan("recompute")
    diff = float((cached.actions - full.actions).abs().max())
    if not diff <= 1e-4:
        raise AssertionError(f"planning horizon {horizon}: KV-cached and recomputed plans differ by {diff}")
    t = time_interleaved({n: (lambda n=n: plan(n)) for n in planners}, device=device, warmup=1, repeats=repeats)
    out = {"horizon": horizon, "context_frames": context_frames, "num_samples": num_samples, "iterations": iterations,
           "kv_cache_s_per_action": t["kv_cache"].median_s, "recompute_s_per_action": t["recompute"].median_s,
           "speedup": t["recompute"].median_s / t["kv_cache"].median_s, "max_action_diff": diff}
    logger.info("planning H=%d T0=%d: kv %.3g s, recompute %.3g s per action (%.2fx)", horizon, context_frames,
                out["kv_cache_s_per_action"], out["recompute_s_per_action"], out["speedup"])
    return out


# ----------------------------------------------------------------------------------------------------------------
# data


def data_benchmark(source: str, *, num_workers: int, batch_size: int, num_batches: int, frames: int = 8,
                   crop_size: int = 64) -> dict[str, float]:
    """Decoded clips/s of the streamed video pipeline (`load_video_dataset` + `dataloader`, train transform).

    The first batch (worker start-up, stream opening) is not timed; then `num_batches` batches are.
    """
    from hf_jepa.data import VideoClipConfig, dataloader, load_video_dataset

    ds = load_video_dataset(source, "train", clip_config=VideoClipConfig(frames_per_clip=frames, crop_size=crop_size),
                            shuffle_buffer=0)
    loader = iter(dataloader(ds, batch_size=batch_size, num_workers=num_workers))
    next(loader)
    clips, start = 0, time.perf_counter()
    for _ in range(num_batches):
        batch = next(loader, None)
        if batch is None:
            break
        clips += batch["pixel_values_videos"].shape[0]
    seconds = time.perf_counter() - start
    del loader
    return {"num_workers": num_workers, "clips": clips, "seconds": seconds, "clips_per_second": clips / seconds}
