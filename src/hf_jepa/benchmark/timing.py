"""Timing and memory measurement: what every benchmark in `hf_jepa.benchmark` is built on.

- **Time**: `time_interleaved` runs the candidates round-robin (A, B, A, B, ...) after `warmup` calls each and
  reports the median (and min) over `repeats`. Interleaving matters on a shared CPU: background load hits both
  sides of a ratio alike. On CUDA each call is bracketed by `torch.cuda.Event`s (device time) after a sync; on CPU
  by `time.perf_counter` (wall time).
- **Matmul rate**: `matmul_rate` times a large square fp32 GEMM (bf16 on CUDA) the same way: FLOP/s = 2 n^3 / t.
- **FLOPs**: `vit_forward_flops` counts multiply-adds x 2 analytically: the patch projection, the linear layers
  (qkv, output projection, MLP) and both attention matmuls (QK^T, AV). Norms, softmax, GELU and RoPE are left
  out (they are not matmuls), so the "matmul fraction" is achieved matmul FLOP/s over the measured GEMM rate.
- **Peak memory**: on CUDA `torch.cuda.max_memory_allocated` minus the allocation before the call (tensors only).
  On CPU the resident set: the kernel's high-water mark (`VmHWM`) is reset through `/proc/self/clear_refs`, and
  the peak is `VmHWM` after the call minus `VmRSS` before it. glibc would otherwise serve large tensors from
  freed heap memory that is already resident (its mmap threshold grows after frees), so during the measurement
  allocations >= 64 KiB are forced to fresh `mmap`s (`mallopt`) and the heap is trimmed first. Without
  `/proc` (not Linux) `tracemalloc` is used, which only sees Python allocations: the result says which.
- **Background load**: `background_cpu_load`, the fraction of the machine's CPUs busy with other work.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "MemoryResult",
    "Timing",
    "background_cpu_load",
    "matmul_rate",
    "peak_memory",
    "time_interleaved",
    "vit_forward_flops",
]


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
