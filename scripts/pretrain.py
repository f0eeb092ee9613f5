"""Self-supervised pretraining of I-JEPA / V-JEPA 2 / V-JEPA 2.1 on streamed images or video, with Accelerate.

    accelerate launch scripts/pretrain.py --model_type vjepa2 --preset tiny --output_dir runs/vjepa2-tiny \
        --max_steps 2000 --checkpointing_steps 500 [--resume_from_checkpoint latest]
    accelerate launch scripts/pretrain.py config.yaml          # the same flags from a YAML / JSON file
    python scripts/pretrain.py --model_type ijepa --probe_label_column digit   # + an online linear probe
    python scripts/pretrain.py --model_type vjepa2_1 --preset tiny \
        --image_dataset_name builtin:moving_digit_frames   # V-JEPA 2.1: videos and images, dense context loss

Writes output_dir/metrics.jsonl (loss, lr, throughput, the collapse monitors effective_rank /
constant_baseline_ratio / target_std, and with --probe_label_column online_probe_loss / online_probe_top1 on
--probe_split), output_dir/checkpoints/step_N (Accelerate state: exact resume, the online probe included),
output_dir/final (the pretraining model; AutoModel loads its EMA target encoder, or with --objective sigreg
the online encoder) and output_dir/encoder (the encoder alone, with a model card and processor config).
"""

from __future__ import annotations

import logging
import sys

from hf_jepa.pretraining import PretrainArguments, build_pretraining, save_pretraining_outputs
from hf_jepa.training.runner import build_accelerator, parse_flags, run_fit


def main(argv: list[str] | None = None) -> None:
    args = parse_flags(PretrainArguments, sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    accelerator = build_accelerator(args, "pretrain")
    model, result = run_fit(args, accelerator, build_pretraining(args, accelerator))
    save_pretraining_outputs(args, accelerator, model, result)
    accelerator.end_training()


if __name__ == "__main__":
    main()
