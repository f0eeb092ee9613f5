"""Benchmark suite: ours vs the references on the same weights and inputs (see BENCHMARKS.md).

    python scripts/benchmark.py [--quick] [--device cpu|cuda] --json results.json [--markdown table.md]

Sections (all but `space_load` by default, or pick with --sections): `encoder` (our encoders vs transformers'
VJEPA2Model / IJepaModel, and achieved FLOP/s vs a measured GEMM rate), `vjepa2_1` (our V-JEPA 2.1 encoder vs our
V-JEPA 2 encoder at the same size: equal outputs checked, time ratio; on CUDA also ViT-L at 384 px in bf16), `train`
(pretraining and world-model train steps: samples/s, peak memory), `monitors` (the pretraining train step without and
with the collapse monitors and an online probe, side by side), `planning` (CEM with KV-cached rollouts vs full
recomputation), `data` (decoded clips/s of the streamed video pipeline vs the V-JEPA 2 tiny train step); `space_load`
(only when named: needs gradio; the Space launched locally with random models of the demo's sizes, driven by
concurrent gradio_client clients: requests served and refused as busy, p50 / p95 latency per endpoint, memory).
Correctness checks (equal outputs, equal plans) raise. Timings are medians over interleaved repeats after warm-up; the
suite and the measuring code are
`hf_jepa.benchmark`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import torch

from hf_jepa.benchmark import DEFAULT_SECTIONS, SECTIONS, markdown_table, parse_sections, run_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (the tests run this)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--sections", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated subset of {SECTIONS} (default: {','.join(DEFAULT_SECTIONS)})")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        sections = parse_sections(args.sections)
    except ValueError as e:
        parser.error(f"--sections: {e}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    results = run_suite(sections, quick=args.quick, device=args.device, threads=args.threads)
    text = markdown_table(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
