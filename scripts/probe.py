"""Probe a frozen JEPA encoder: extract features once, train an attentive or linear probe, evaluate, save.

    python scripts/probe.py --model runs/vjepa2-tiny/final --dataset_name builtin:moving_digits \
        --label_column direction --probe attentive --output_dir runs/probe --json results.json

--model: a folder / Hub id (pretraining, encoder or classifier folder), `random:<preset>` (random init of that
preset, the baseline every SSL result is read against) or `pixels` (probe on raw downsampled pixels).
--baselines random pixels: the same probe on a random init of --model's architecture and on raw pixels, same splits.
Writes to --output_dir, the JSON results first (top1, top5, chance, counts, settings, baselines' top-1), then
(not for `pixels`) classifier/: a `save_pretrained` folder with processor config, the results JSON and a model card;
it loads with AutoModelFor{Video,Image}Classification and pipeline(); confusion_matrix.png, result-<time>.json
(evaluate.save), probe_training/ (metrics.jsonl), baselines/<name>/. An output failing after the JSON is named
(exit status 1); the JSON stays.
The job itself: hf_jepa.probing.run.
"""

from __future__ import annotations

import logging
import sys

from hf_jepa.metrics import OutputsIncomplete
from hf_jepa.probing.run import ProbeArguments, run_probe
from hf_jepa.training.runner import parse_flags


def parse_args(argv: list[str] | None = None) -> ProbeArguments:
    return parse_flags(ProbeArguments, sys.argv[1:] if argv is None else argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return run_probe(args)
    except OutputsIncomplete as err:  # the results JSON is saved; name what failed after it
        raise SystemExit(f"probe: {err}") from err


if __name__ == "__main__":
    main()
