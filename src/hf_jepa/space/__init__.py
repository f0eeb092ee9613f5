"""The Gradio Space: patch-feature PCA, probe classification and goal-image planning in Two-Rooms and Push-T.

`spaces/app.py` only calls `build_demo` (`hf_jepa.space.ui`); everything it shows is computed in the modules here so
it can be tested without a browser, and without gradio: only `ui.py` imports it (`build_demo` and `launch_kwargs`
are loaded from there on first access). Models come from local folders or Hub ids named by environment variables
(defaults: what `make demo` leaves)::

    HF_JEPA_ENCODER       V-JEPA 2 / I-JEPA encoder (or a folder holding one)            outputs/demo/pretrain/encoder
    HF_JEPA_PROBE_MODEL   VideoJepaForVideoClassification / ImageJepaForImageClassification
                                                                                   outputs/demo/probe/classifier
    HF_JEPA_WORLD_MODEL   JepaWorldModel (V-JEPA 2-AC)                                 outputs/demo/world_model
    HF_JEPA_PUSHT_WORLD_MODEL  JepaWorldModel trained on Push-T (state_dim 5, action_dim 2), from images or, with
                          state_latents.json beside it (train_world_model.py --latents state), from true states;
                          unset: the state world model scripts/demo.py --env pusht writes if it exists, else none
                          (the Push-T panel says so)
    HF_JEPA_SUBGOAL_DATASET  the world model's LeRobot training data, or the subgoal_graph.safetensors that
                             train_world_model.py --save_subgoal_graph wrote; planning then aims at subgoals
                             along the data's shortest path (hf_jepa.planning.subgoals); 'none': at the goal
                             (unset: the world model's saved graph, local or on the Hub, if any, else the goal)

The Features and Probe tabs say what their model was trained on, from what the pretraining and probe scripts
recorded in its model card (`hf_jepa.hub.read_card_metadata`); beside each prediction the Probe tab states what the
probe was trained on, its test top-1 against chance and the random-init and pixel baselines on the same split, read
from the probe's `results.json` (`hf_jepa.space.probe`). Both offer the first clips of the probe's test split as
examples, named with their true label (else clips of the built-in `textured_moving_digits` test split).

A missing model never crashes the app: its tab says how to make it. Uploads are checked before they are decoded
(extension, size, content of the kind the extension says, pixels from the header, video length and frame count) and
every failure reaches the UI as a short `gr.Error` naming the file, the problem and what is expected. Endpoints are
named (`/features`, `/probe`, `/plan`, `/plan_pusht`) for `gradio_client`. Under load the queue is bounded and a
request beyond it gets gradio's "busy, try again" at once (`SpaceConfig.max_queue_size`, `plan_concurrency`,
`encoder_concurrency`). Files of Hub repos (a world model's subgoal graph, model cards) are retried on transient
errors and a failure is reported, never remembered (`hub_files`).

    errors.py     InputError, ModelUnavailable, HubFileUnavailable (the messages every tab shows)
    config.py     SpaceConfig (sources from the environment, limits)
    models.py     load_model (cached), model_status, describe_model (from the model card), load_subgoal_graph,
                  load_model_state_latents (a --latents state world model's state_latents.json, cached)
    hub_files.py  hub_file: one file of a Hub repo, with retries; found / absent remembered, failures not
    media.py      read_media (checked uploads -> frames), example_clips
    probe.py      probe_record (the probe's results.json), probe_examples (its test clips), examples_right
    features.py   extract_patch_features, pca_rgb, features_panel, classify
    episode.py    plan_episode: one MPC episode of a world model with progress reports (both Plan views)
    two_rooms.py  render_arena, plan_in_two_rooms, energy_figure
    pusht.py      render_pusht, pusht_scene, plan_in_pusht, pusht_status
    ui.py         build_demo (the Blocks app, one function per tab, queue limits), launch_kwargs
    load.py       drive_load (concurrent gradio_client clients), space_load_benchmark, random_space_models
"""

from typing import Any

from hf_jepa.space.config import (
    ENV_ENCODER,
    ENV_PROBE,
    ENV_PUSHT_WORLD_MODEL,
    ENV_SUBGOALS,
    ENV_WORLD_MODEL,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    HubFileUnavailable,
    InputError,
    ModelUnavailable,
    SpaceConfig,
)
from hf_jepa.space.features import FeatureResult, classify, extract_patch_features, features_panel, pca_rgb
from hf_jepa.space.media import DIRECTION_NAMES, example_clips, read_media
from hf_jepa.space.models import (
    clear_model_cache,
    describe_model,
    load_model,
    load_model_state_latents,
    load_subgoal_graph,
    model_status,
)
from hf_jepa.space.pusht import PushTPlanOutput, plan_in_pusht, pusht_scene, pusht_status, render_pusht
from hf_jepa.space.two_rooms import PlanOutput, energy_figure, plan_in_two_rooms, render_arena

_UI_NAMES = ("build_demo", "launch_kwargs")

__all__ = [
    "DIRECTION_NAMES",
    "ENV_ENCODER",
    "ENV_PROBE",
    "ENV_PUSHT_WORLD_MODEL",
    "ENV_SUBGOALS",
    "ENV_WORLD_MODEL",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FeatureResult",
    "HubFileUnavailable",
    "InputError",
    "ModelUnavailable",
    "PlanOutput",
    "PushTPlanOutput",
    "SpaceConfig",
    "classify",
    "clear_model_cache",
    "describe_model",
    "energy_figure",
    "example_clips",
    "extract_patch_features",
    "features_panel",
    "load_model",
    "load_model_state_latents",
    "load_subgoal_graph",
    "model_status",
    "pca_rgb",
    "plan_in_pusht",
    "plan_in_two_rooms",
    "pusht_scene",
    "pusht_status",
    "read_media",
    "render_arena",
    "render_pusht",
]


def __getattr__(name: str) -> Any:
    """`build_demo` / `launch_kwargs` from `hf_jepa.space.ui`, imported (with gradio) on first access."""
    if name in _UI_NAMES:
        from hf_jepa.space import ui

        return getattr(ui, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
