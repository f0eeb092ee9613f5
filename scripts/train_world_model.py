"""Train a V-JEPA 2-AC world model (frozen V-JEPA 2 encoder + action-conditioned predictor) on LeRobot data.

    accelerate launch scripts/train_world_model.py --encoder runs/enc/encoder --dataset_name data/two_rooms \
        --output_dir runs/wm --max_steps 2000 [--frame_skip 5 --frames_per_window 4 --auto_steps 2]

Writes output_dir/metrics.jsonl, output_dir/checkpoints/step_N (exact resume) and output_dir/final (a
`JepaWorldModel` folder loadable with AutoModel, with a model card; with --save_subgoal_graph also
final/subgoal_graph.safetensors, for `evaluate_planning.py --subgoals`).

Perfect perception (`--latents state`): the predictor on one token per frame computed from the true state (Push-T:
the agent and the T's 8 corners), no encoder and no video; final/ also holds state_latents.json, which
`evaluate_planning.py` reads to plan toward the goal state's latent:

    python scripts/train_world_model.py --latents state --dataset_name outputs/pusht_expert --output_dir runs/wm_state \
        --max_steps 3000 --frames_per_window 4 --auto_steps 3 --frame_skip 5 --state_mode hold \
        --per_device_train_batch_size 64 --learning_rate 1e-3
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hf_jepa.data.state_latents import save_state_latents
from hf_jepa.envs.pusht_data import INFO_KEY
from hf_jepa.hub import write_model_card
from hf_jepa.training.checkpoints import atomic_folder, fault_point
from hf_jepa.training.runner import build_accelerator, parse_flags, run_fit
from hf_jepa.world_model import WorldModelArguments, build_world_model_training, save_subgoal_graph

logger = logging.getLogger("train_world_model")


def main(argv: list[str] | None = None) -> None:
    args = parse_flags(WorldModelArguments, sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    accelerator = build_accelerator(args, "world_model")
    setup = build_world_model_training(args, accelerator)
    model, result = run_fit(args, accelerator, setup)
    if accelerator.is_main_process:
        final = Path(args.output_dir) / "final"
        with atomic_folder(final) as folder:  # a run killed while saving leaves no half-written final/
            model.save_pretrained(folder)
            if args.save_subgoal_graph:
                save_subgoal_graph(args, setup, model, folder, accelerator)
            if setup.state_latents is not None:
                record = (setup.data_info or {}).get(INFO_KEY, {})
                save_state_latents(folder, setup.state_latents, action=record.get("action"),
                                   frame_skip=args.frame_skip, dataset=args.dataset_name)
            training = {"dataset": args.dataset_name, "encoder": args.encoder, "steps": result.global_step,
                        "frames_per_window": args.frames_per_window, "frame_skip": args.frame_skip,
                        "auto_steps": args.auto_steps, "state_mode": args.state_mode, "latents": args.latents,
                        "final_loss": result.last_metrics.get("loss")}
            write_model_card(folder, training=training)
            fault_point("in_final")
        logger.info("step %d; saved %s", result.global_step, final)
    accelerator.end_training()


if __name__ == "__main__":
    main()
