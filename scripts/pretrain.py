"""Self-supervised pretraining of I-JEPA / V-JEPA 2 on streamed images or video, with Accelerate.

    accelerate launch scripts/pretrain.py --model_type vjepa2 --preset tiny --output_dir runs/vjepa2-tiny \
        --max_steps 2000 --checkpointing_steps 500 [--resume_from_checkpoint latest]
    accelerate launch scripts/pretrain.py config.yaml          # the same flags from a YAML / JSON file

Writes output_dir/metrics.jsonl, output_dir/checkpoints/step_N (Accelerate state: exact resume),
output_dir/final (the pretraining model; AutoModel loads its EMA target encoder) and output_dir/encoder
(the encoder alone, with a model card).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from accelerate import Accelerator
from transformers import HfArgumentParser

from hf_jepa.pretraining import PretrainArguments, build_pretraining
from hf_jepa.training import LoopConfig, fit

logger = logging.getLogger("pretrain")


def parse_args(argv: list[str]) -> PretrainArguments:
    parser = HfArgumentParser(PretrainArguments)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])[0]
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])[0]
    return parser.parse_args_into_dataclasses(argv)[0]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=args.output_dir,
    )
    if args.report_to != "none":
        accelerator.init_trackers("pretrain", config=dataclasses.asdict(args))
    setup = build_pretraining(args, accelerator)
    model, optimizer, scheduler = accelerator.prepare(setup.model, setup.optimizer, setup.lr_scheduler)
    loop = LoopConfig(
        output_dir=args.output_dir, max_steps=args.max_steps, checkpointing_steps=args.checkpointing_steps,
        log_every=args.log_every, resume_from_checkpoint=args.resume_from_checkpoint,
        max_grad_norm=args.max_grad_norm, seed=args.seed, checkpoints_total_limit=args.checkpoints_total_limit,
    )
    result = fit(loop, accelerator=accelerator, model=model, dataloader_factory=setup.dataloader_factory,
                 optimizer=optimizer, lr_scheduler=scheduler, compute_loss=setup.compute_loss,
                 prepare_batch=setup.prepare_batch, ema_schedule=setup.ema_schedule)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        out = Path(args.output_dir)
        unwrapped.save_pretrained(out / "final")
        encoder = unwrapped.target_encoder if unwrapped.target_encoder is not None else unwrapped.encoder
        encoder.save_pretrained(out / "encoder")
        logger.info("step %d, %d skipped samples; saved %s and %s", result.global_step, result.skipped_samples,
                    out / "final", out / "encoder")
    accelerator.end_training()


if __name__ == "__main__":
    main()
