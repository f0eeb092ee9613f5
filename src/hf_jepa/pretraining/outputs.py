"""What a pretraining run leaves: `output_dir/final` (the whole model) and `output_dir/encoder` (with its
processor and a model card), each written atomically."""

from __future__ import annotations

from pathlib import Path

from accelerate import Accelerator
from torch import nn

from hf_jepa.pretraining.arguments import PretrainArguments
from hf_jepa.training.checkpoints import atomic_folder, fault_point
from hf_jepa.training.loop import LoopResult
from hf_jepa.training.rank_logging import get_logger
from hf_jepa.training.runner import full_state_dict, parse_config_overrides

logger = get_logger(__name__)  # main process only under accelerate launch

def save_pretraining_outputs(args: PretrainArguments, accelerator: Accelerator, model: nn.Module,
                             result: LoopResult) -> tuple[Path, Path]:
    """Write ``output_dir/final`` (the whole pretraining model) and ``output_dir/encoder`` (the encoder alone, with
    processor config and a model card recording the run); returns both folders. A collective: call it on every
    process (FSDP gathers the full weights onto the main process, which writes).

    "The encoder" is the EMA target encoder when the model has one (Meta's objective), else the online encoder
    (SIGReg). Each folder is written atomically: a run killed while saving leaves the previous folder (or none),
    never a half-written one, and ``--resume_from_checkpoint latest`` then finishes the save.
    """
    from hf_jepa.hub import write_model_card
    from hf_jepa.processing import save_processor

    state_dict = full_state_dict(accelerator, model)  # full weights on the main process
    out = Path(args.output_dir)
    if accelerator.is_main_process:
        prefix = "target_encoder." if model.target_encoder is not None else "encoder."
        encoder = model.target_encoder if model.target_encoder is not None else model.encoder
        encoder_state = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
        # save_pretrained empties the dict it is given. Without an EMA target (SIGReg) it also writes the online
        # encoder as target_encoder.*, which AutoModel loads.
        with atomic_folder(out / "final") as folder:
            model.save_pretrained(folder, state_dict=dict(state_dict))
            fault_point("in_final")
        training = {"dataset": args.dataset_name, "preset": args.preset, "objective": args.objective,
                    "steps": result.global_step,
                    "batch_size": args.per_device_train_batch_size * accelerator.num_processes
                    * args.gradient_accumulation_steps,
                    "final_loss": result.last_metrics.get("loss"), "skipped_samples": result.skipped_samples}
        if overrides := parse_config_overrides(args.config_overrides):
            training["config_overrides"] = overrides
        with atomic_folder(out / "encoder") as folder:
            encoder.save_pretrained(folder, state_dict=encoder_state)
            save_processor(encoder, folder)
            # also in the card's YAML metadata (hf_jepa.hub.read_card_metadata): the Space says what it shows
            write_model_card(folder, training=training)
        logger.info("step %d, %d skipped samples; saved %s and %s", result.global_step, result.skipped_samples,
                    out / "final", out / "encoder")
    accelerator.wait_for_everyone()
    return out / "final", out / "encoder"
