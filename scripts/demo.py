"""`make demo`: build each model family at its tiny preset, run it on built-in data, print shapes and timings,
then plan one Two-Rooms step with a (randomly initialised) world model to show the whole API end to end."""

from __future__ import annotations

import time

import gymnasium as gym
import torch

import hf_jepa
import hf_jepa.envs  # noqa: F401  (registers hf_jepa/TwoRooms-v0)
from hf_jepa.data.video import VideoClipConfig, dataloader, load_video_dataset
from hf_jepa.planning import CEMConfig
from hf_jepa.wm_planner import WorldModelPlanner


def timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    print(f"{label:<48s} {time.perf_counter() - start:7.3f} s")
    return out


@torch.no_grad()
def main() -> None:
    torch.manual_seed(0)
    clips = load_video_dataset("builtin:moving_digits", "test", clip_config=VideoClipConfig(train=False))
    batch = timed("stream 4 built-in moving-digit clips", lambda: next(iter(dataloader(clips, 4))))
    video = batch["pixel_values_videos"]
    print("  clips", tuple(video.shape))
    vjepa = hf_jepa.VideoJepaModel(hf_jepa.VideoJepaConfig.from_preset("tiny")).eval()
    out = timed("V-JEPA 2 tiny encoder forward", lambda: vjepa(pixel_values_videos=video).last_hidden_state)
    print("  features", tuple(out.shape))
    ijepa = hf_jepa.ImageJepaModel(hf_jepa.ImageJepaConfig.from_preset("tiny")).eval()
    out = timed("I-JEPA tiny encoder forward (first frames)", lambda: ijepa(pixel_values=video[:, 0]).last_hidden_state)
    print("  features", tuple(out.shape))
    wm = hf_jepa.JepaWorldModel(hf_jepa.JepaWorldModelConfig.from_preset("tiny")).eval()
    env = gym.make("hf_jepa/TwoRooms-v0")
    obs, info = env.reset(seed=0)
    planner = WorldModelPlanner(wm, CEMConfig(horizon=3, num_samples=32, topk=4, iterations=3))
    plan = timed("CEM plan (32 samples x 3 steps x 3 iters)", lambda: planner.plan(obs, info["goal"], info["state"]))
    print("  planned actions", tuple(plan.actions.shape), "final energy", round(plan.final_energy, 4))
    print("demo finished: see README.md for pretraining, world-model training and planning")


if __name__ == "__main__":
    main()
