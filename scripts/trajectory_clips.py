"""Cut labelled clips from planar-agent trajectories (LeRobot v3, e.g. Two-Rooms) for probes: `heading` (8 directions
of the agent's net motion over the clip) and `room` (left / right of the wall), one split per dataset.

    python scripts/trajectory_clips.py --train outputs/demo/two_rooms --test outputs/demo/two_rooms_heldout \
        --output_dir outputs/demo/probe_clips
    python scripts/probe.py --model outputs/demo/pretrain/encoder --dataset_name outputs/demo/probe_clips \
        --label_column heading --frame_step 1 --baselines random pixels --output_dir outputs/demo/probe

The clips are stored frame by frame at --frame_step env steps (probe them with --frame_step 1). The job itself:
hf_jepa.data.trajectory_clips.
"""

from __future__ import annotations

import argparse
import logging

from hf_jepa.data.trajectory_clips import write_trajectory_clips


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, help="LeRobot dataset (folder or Hub id) of the train split")
    p.add_argument("--test", required=True, help="LeRobot dataset of the test split (other episodes)")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--frames_per_clip", type=int, default=8, help="the probed encoder's num_frames")
    p.add_argument("--frame_step", type=int, default=2, help="env steps between the frames of a clip")
    p.add_argument("--clips_per_episode", type=int, default=6)
    p.add_argument("--min_displacement", type=float, default=0.08,
                   help="clips whose agent moves less (world units) are left out: they have no heading")
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, int]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    counts = write_trajectory_clips({"train": args.train, "test": args.test}, args.output_dir,
                                    frames_per_clip=args.frames_per_clip, frame_step=args.frame_step,
                                    clips_per_episode=args.clips_per_episode,
                                    min_displacement=args.min_displacement, overwrite=args.overwrite)
    print(f"wrote {args.output_dir}: " + ", ".join(f"{k} {v} clips" for k, v in counts.items()))
    return counts


if __name__ == "__main__":
    main()
