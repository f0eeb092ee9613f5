"""Self-supervised pretraining of I-JEPA / V-JEPA 2 on streamed images or video, with Accelerate.

    accelerate launch scripts/pretrain.py --model_type vjepa2 --preset tiny --output_dir runs/vjepa2-tiny \
        --max_steps 2000 --checkpointing_steps 500 [--resume_from_checkpoint latest]
    accelerate launch scripts/pretrain.py config.yaml          # the same flags from a YAML / JSON file
    python scripts/pretrain.py --model_type ijepa --probe_label_column digit   # + an online linear probe

Writes output_dir/metrics.jsonl (loss, lr, throughput, the collapse monitors effective_rank /
constant_baseline_ratio / target_std, and with --probe_label_column online_probe_loss / online_probe_top1 on
--probe_split), output_dir/checkpoints/step_N (Accelerate state: exact resume, the online probe included),
output_dir/final (the pretraining model; AutoModel loads its EMA target encoder, or with --objective sigreg
the online encoder) and output_dir/encoder (the encoder alone, with a model card and processor config).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hf_jepa.hub import write_model_card
from hf_jepa.pretraining import PretrainArguments, build_pretraining
from hf_jepa.processing import save_processor
from hf_jepa.training.runner import (
    build_accelerator,
    full_state_dict,
    parse_config_overrides,
    parse_flags,
    run_fit,
)

logger = logging.getLogger("pretrain")


def main(argv: list[str] | None = None) -> None:
    args = parse_flags(PretrainArguments, sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    accelerator = build_accelerator(args, "pretrain")
    model, result = run_fit(args, accelerator, build_pretraining(args, accelerator))
    state_dict = full_state_dict(accelerator, model)  # every process (FSDP gathers); full weights on the main one
    if accelerator.is_main_process:
        out = Path(args.output_dir)
        prefix = "target_encoder." if model.target_encoder is not None else "encoder."
        encoder = model.target_encoder if model.target_encoder is not None else model.encoder
        encoder_state = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
        # save_pretrained empties the dict it is given. Without an EMA target (SIGReg) it also writes the online
        # encoder as target_encoder.*, which AutoModel loads.
        model.save_pretrained(out / "final", state_dict=dict(state_dict))
        encoder.save_pretrained(out / "encoder", state_dict=encoder_state)
        save_processor(encoder, out / "encoder")
        # also recorded in the card's YAML metadata (hf_jepa.hub.read_card_metadata): the Space says what it shows
        training = {"dataset": args.dataset_name, "preset": args.preset, "objective": args.objective,
                    "steps": result.global_step,
                    "batch_size": args.per_device_train_batch_size * accelerator.num_processes
                    * args.gradient_accumulation_steps,
                    "final_loss": result.last_metrics.get("loss"), "skipped_samples": result.skipped_samples}
        if overrides := parse_config_overrides(args.config_overrides):
            training["config_overrides"] = overrides
        write_model_card(out / "encoder", training=training)
        logger.info("step %d, %d skipped samples; saved %s and %s", result.global_step, result.skipped_samples,
                    out / "final", out / "encoder")
    accelerator.end_training()


if __name__ == "__main__":
    main()
