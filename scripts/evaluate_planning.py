"""Plan toward goal images with a trained world model: N MPC episodes, metrics as JSON, a GIF and an energy plot.

    python scripts/evaluate_planning.py --model runs/wm/final --env two_rooms --episodes 50 --seed 0 \
        --json out.json [--output_dir runs/wm/eval --planner cem --num_samples 300 --horizon 8 --iterations 10 \
        --reduction ramp --noise_beta 2]

    python scripts/evaluate_planning.py --model runs/pusht_wm/final --env pusht --dataset data/pusht_heldout \
        --goal_offset 25 --episodes 50 --json pusht.json

The job, its protocol and its outputs: hf_jepa.planning.run (PlanningArguments, run_planning).
"""

from __future__ import annotations

import logging
import sys

import hf_jepa  # noqa: F401  (registers the Auto classes)
from hf_jepa.metrics import OutputsIncomplete
from hf_jepa.planning.run import PlanningArguments, run_planning
from hf_jepa.training.runner import parse_flags


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parse_flags(PlanningArguments, sys.argv[1:] if argv is None else argv)
    except ValueError as err:
        raise SystemExit(f"evaluate_planning: {err}") from err
    try:
        r = run_planning(args)
    except OutputsIncomplete as err:  # the evaluation's JSON is saved; name what failed after it
        raise SystemExit(f"evaluate_planning: {err}") from err
    rooms = (f"; other room {r['success_rate_other_room']}, same room {r['success_rate_same_room']}"
             if "success_rate_other_room" in r else "")
    coverage = f"; mean final coverage {r['final']['coverage']:.2f}" if "coverage" in r["final"] else ""
    print(f"success {r['success_rate']:.0%} ({r['successes']}/{r['episodes']}){rooms}{coverage}; mean final distance "
          f"{r['mean_final_distance']:.3f}; {r['seconds_per_action']:.3f} s/action, {r['seconds_per_plan']:.2f} "
          f"s/plan; wrote {r['gif']}, {r['energy_plot']}")
    return r


if __name__ == "__main__":
    main()
