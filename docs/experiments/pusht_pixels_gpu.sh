#!/usr/bin/env bash
# Push-T from pixels on the expert-like data, one run on a lent GPU (prepared, not yet run; budget <= 10 minutes).
#
# What it does, with the time each stage should take on one H100 / H200 with 16 CPU cores (estimates from the CPU
# measurements in docs/experiments/pusht_planning.md; the script prints the real ones):
#   1. collect EPISODES expert-mix episodes, states only, 16 worker processes       (~1 min for 10,000 on 16 cores)
#   2. render RENDER_EPISODES of them at 64 px in a second pass, 16 processes        (~5 ms a frame: 2,000 x 101 frames
#                                                                                      ~ 65 s on 16 cores)
#   3. pretrain the V-JEPA 2 tiny encoder with 8-px patches (64 px -> 8 x 8 patch tokens, DINO-WM's latent is the
#      patch tokens) on the rendered frames, SIGReg objective (LeJEPA), PRETRAIN_STEPS steps   (~2 min)
#   4. train the world model (frozen encoder, residual AC predictor, 4-frame windows, 3-step rollout loss)
#      WM_STEPS steps                                                                 (~2 min)
#   5. evaluate with the published protocol: 50 goals 25 env steps ahead from held-out expert-like episodes,
#      budget 50, pose success                                                        (~1 min)
# A stage that overruns is cut by its `timeout`; whatever finished is kept under $OUT.
#
# Usage on the device machine (the repository root is the working directory, $OUT is copied back):
#   bash docs/experiments/pusht_pixels_gpu.sh
# A CPU smoke run of the same commands at toy sizes (a few minutes on 2 cores):
#   EPISODES=40 RENDER_EPISODES=20 HELDOUT=20 PRETRAIN_STEPS=5 WM_STEPS=5 EVAL_EPISODES=2 WORKERS=2 \
#       bash docs/experiments/pusht_pixels_gpu.sh
set -euo pipefail

OUT=${OUT:-runs/pusht_pixels_gpu}
EPISODES=${EPISODES:-10000}
RENDER_EPISODES=${RENDER_EPISODES:-2000}
HELDOUT=${HELDOUT:-200}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-1500}
WM_STEPS=${WM_STEPS:-3000}
EVAL_EPISODES=${EVAL_EPISODES:-50}
WORKERS=${WORKERS:-16}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
stage() { echo "[$(date +%T)] $*" | tee -a "$OUT/stages.log"; }

stage "1. states: $EPISODES training + $HELDOUT held-out expert-mix episodes"
$PY scripts/collect_trajectories.py --env pusht --policy expert_mix --no_render --workers "$WORKERS" \
    --episodes "$EPISODES" --output_dir "$OUT/states" --seed 0 --overwrite | tee -a "$OUT/stages.log"
$PY scripts/collect_trajectories.py --env pusht --policy expert_mix --no_render --workers "$WORKERS" \
    --episodes "$HELDOUT" --output_dir "$OUT/heldout" --seed 10000000 --overwrite | tee -a "$OUT/stages.log"

stage "2. render $RENDER_EPISODES episodes at 64 px"
timeout 150 $PY scripts/collect_trajectories.py --env pusht --render_from "$OUT/states" --episodes "$RENDER_EPISODES" \
    --image_size 64 --workers "$WORKERS" --output_dir "$OUT/frames64" --overwrite | tee -a "$OUT/stages.log"

stage "3. encoder: V-JEPA 2 tiny, 8-px patches, SIGReg, $PRETRAIN_STEPS steps"
timeout 180 $PY scripts/pretrain.py --model_type vjepa2 --preset tiny --dataset_name "$OUT/frames64" \
    --objective sigreg --config_overrides '{"patch_size": 8, "image_size": 64}' --max_steps "$PRETRAIN_STEPS" \
    --frame_step 2 --warmup_steps 100 --per_device_train_batch_size 64 --checkpointing_steps "$PRETRAIN_STEPS" \
    --output_dir "$OUT/encoder" 2>&1 | tail -5 | tee -a "$OUT/stages.log"

stage "4. world model: frozen encoder, residual AC predictor, $WM_STEPS steps"
timeout 180 $PY scripts/train_world_model.py --encoder "$OUT/encoder/encoder" --dataset_name "$OUT/frames64" \
    --max_steps "$WM_STEPS" --state_mode hold --frames_per_window 4 --auto_steps 3 --frame_skip 5 \
    --per_device_train_batch_size 64 --learning_rate 5e-4 --config_overrides '{"predict_residual": true}' \
    --checkpointing_steps "$WM_STEPS" --output_dir "$OUT/wm" 2>&1 | tail -5 | tee -a "$OUT/stages.log"

stage "5. planning: $EVAL_EPISODES goals 25 steps ahead, budget 50, pose success"
timeout 120 $PY scripts/evaluate_planning.py --model "$OUT/wm/final" --env pusht --dataset "$OUT/heldout" \
    --goal_offset 25 --success pose --episodes "$EVAL_EPISODES" --json "$OUT/planning.json" 2>&1 | tail -3 \
    | tee -a "$OUT/stages.log"
$PY -c "import json; r = json.load(open('$OUT/planning.json')); print('success', r['success_rate'], \
'skipped', r['protocol']['skipped_tasks'])" | tee -a "$OUT/stages.log"
stage "done"
