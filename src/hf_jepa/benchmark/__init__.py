"""hf_jepa.benchmark: ours vs the references on the same weights and inputs (`scripts/benchmark.py`, BENCHMARKS.md).

    timing.py    Timing, time_interleaved, matmul_rate, vit_forward_flops, background_cpu_load, peak_memory
                 (its docstring says exactly how time, FLOPs and memory are measured)
    encoders.py  build_reference_encoder, encoder_comparison (ours vs transformers), versions
    training.py  pretraining_batch, world_model_batch, train_step_benchmark, monitor_overhead_benchmark
    planning.py  planning_benchmark (KV-cached vs recomputed CEM rollouts)
    data.py      data_benchmark (clips/s of the streamed video pipeline)
    suite.py     SETTINGS, TARGETS, the section runners, run_suite (-> results.json), markdown_table

Everything returns plain dicts / dataclasses of floats; `run_suite` assembles them into the results.

    results = run_suite(["encoder", "planning"], quick=True, device="cpu")
    print(markdown_table(results))
"""

from hf_jepa.benchmark.data import data_benchmark
from hf_jepa.benchmark.encoders import build_reference_encoder, encoder_comparison, versions
from hf_jepa.benchmark.planning import planning_benchmark
from hf_jepa.benchmark.suite import (
    DEFAULT_SECTIONS,
    SECTION_RUNNERS,
    SECTIONS,
    SETTINGS,
    TARGETS,
    markdown_table,
    parse_sections,
    run_suite,
)
from hf_jepa.benchmark.timing import (
    MemoryResult,
    Timing,
    background_cpu_load,
    matmul_rate,
    peak_memory,
    time_interleaved,
    vit_forward_flops,
)
from hf_jepa.benchmark.training import (
    monitor_overhead_benchmark,
    pretraining_batch,
    train_step_benchmark,
    world_model_batch,
)

__all__ = [
    "DEFAULT_SECTIONS",
    "SECTIONS",
    "SECTION_RUNNERS",
    "SETTINGS",
    "TARGETS",
    "MemoryResult",
    "Timing",
    "background_cpu_load",
    "build_reference_encoder",
    "data_benchmark",
    "encoder_comparison",
    "markdown_table",
    "matmul_rate",
    "monitor_overhead_benchmark",
    "parse_sections",
    "peak_memory",
    "planning_benchmark",
    "pretraining_batch",
    "run_suite",
    "time_interleaved",
    "train_step_benchmark",
    "versions",
    "vit_forward_flops",
    "world_model_batch",
]
