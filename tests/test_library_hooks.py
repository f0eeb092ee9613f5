"""The private parts of libraries we rely on, checked against the installed versions, fast: gradio's per-group event
queues (the Space's cap on waiting plans), accelerate's registered-object list and checkpoint file names (resume),
gym-pusht's `_draw` / `_render` (Push-T images without contact points). Each test fails the day the library changes
them, instead of the feature silently switching off."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch


def test_gradio_queue_counts_waiting_plans(tmp_path: Path) -> None:
    """The Space counts waiting plans in gradio's queue of the "plan" concurrency group; a plan queued the way
    gradio's `Queue.push` queues it is counted."""
    from gradio.queueing import Event, EventQueue

    from hf_jepa.space import SpaceConfig, ui

    missing = str(tmp_path / "none")
    demo = ui.build_demo(SpaceConfig(encoder=missing, probe_model=missing, world_model=missing, examples=0))
    plan = next(fn for fn in demo.fns.values() if fn.api_name == "plan")
    validator = plan.validator
    owner = getattr(validator, "__self__", None)
    waiting = owner.waiting if owner is not None else inspect.getclosurevars(validator).nonlocals["waiting"]
    assert waiting("plan") == 0
    demo._queue.create_event_queue_for_fn(plan)  # what Queue.push does first for every request
    per_group = [v for v in vars(demo._queue).values()
                 if isinstance(v, dict) and any(isinstance(q, EventQueue) for q in v.values())]
    assert len(per_group) == 1 and isinstance(per_group[0].get("plan"), EventQueue)
    per_group[0]["plan"].queue.append(Event(None, plan, None, None))  # one plan waiting
    assert waiting("plan") == 1  # 0 here means gradio moved its queues: the cap on waiting plans is off


def test_accelerate_registered_objects_and_checkpoint_files(tmp_path: Path, fresh_accelerate_state) -> None:
    """Resuming reads accelerate's registered objects (`_custom_objects`) and checks their files by accelerate's
    naming (`custom_checkpoint_{i}.pkl`)."""
    from accelerate import Accelerator

    from hf_jepa.training.state import TrainingState, custom_checkpoint_file, registered_for_checkpointing

    accelerator = Accelerator(cpu=True)
    first, second = TrainingState(global_step=3), TrainingState(epoch=5)
    accelerator.register_for_checkpointing(first)
    accelerator.register_for_checkpointing(second)
    registered = registered_for_checkpointing(accelerator)
    assert len(registered) == 2 and registered[0] is first and registered[1] is second
    accelerator.save_state(str(tmp_path / "ck"))
    for i, obj in enumerate((first, second)):
        assert torch.load(custom_checkpoint_file(tmp_path / "ck", i), weights_only=False) == obj.state_dict()
    first.global_step, second.epoch = 0, 0
    accelerator.load_state(str(tmp_path / "ck"))
    assert (first.global_step, second.epoch) == (3, 5)


def test_gym_pusht_renders_through_our_draw() -> None:
    """PushTGoalEnv overrides gym-pusht's `_draw` (shapes only) and calls its `_render`: `_render` must go through
    `_draw` and give the (H, W, 3) observation."""
    from gym_pusht.envs.pusht import PushTEnv

    from hf_jepa.envs.pusht import _simulator

    assert callable(PushTEnv.__dict__.get("_draw")) and callable(PushTEnv.__dict__.get("_render"))
    sim = _simulator(32)
    sim.reset(seed=0)
    drawn: list[int] = []
    draw = type(sim)._draw
    assert draw is not PushTEnv._draw  # ours

    def counting_draw() -> object:
        drawn.append(1)
        return draw(sim)

    sim._draw = counting_draw
    image = np.asarray(sim._render())
    assert drawn == [1] and image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert (image == 255).all(axis=-1).any()  # the white arena our _draw fills
    sim.close()


@pytest.mark.parametrize("package, pin", [("gradio", ">=6.31,<7"), ("accelerate", ">=1.0,<2"),
                                          ("gym-pusht", ">=0.1.8,<0.2"), ("torchcodec", ">=0.17")])
def test_pyproject_pins_the_versions_these_hooks_are_checked_against(package: str, pin: str) -> None:
    import importlib.metadata

    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    specs = {str(Requirement(d).specifier) for d in deps if Requirement(d).name == package}
    assert specs and all(set(s.split(",")) == set(pin.split(",")) for s in specs), specs
    assert importlib.metadata.version(package) in Requirement(f"{package}{pin}").specifier
