"""Probe a frozen JEPA encoder: extract features once, train an attentive or linear probe, evaluate, save.

    python scripts/probe.py --model runs/vjepa2-tiny/final --dataset_name builtin:moving_digits \
        --label_column direction --probe attentive --output_dir runs/probe --json results.json

--model: a folder / Hub id (pretraining, encoder or classifier folder), `random:<preset>` (random init of that
preset, the baseline every SSL result is read against) or `pixels` (probe on raw downsampled pixels).
Writes to --output_dir: the JSON results (top1, top5, counts, settings), result-*.json (evaluate.save),
confusion_matrix.png, probe_training/ (metrics.jsonl), and (not for `pixels`) classifier/: a `save_pretrained`
folder with processor config and a model card; it loads with AutoModelFor{Video,Image}Classification and pipeline().
The job itself: hf_jepa.probing.run.
"""

from __future__ import annotations

import logging
import sys

from hf_jepa.probing.run import ProbeArguments, run_probe
from hf_jepa.training.runner import parse_flags


def parse_args(argv: list[str] | None = None) -> ProbeArguments:
    return parse_flags(ProbeArguments, sys.argv[1:] if argv is None else argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return run_probe(args)


if __name__ == "__main__":
    main()
