"""hf_jepa.world_model: the V-JEPA 2-AC world-model training recipe (`recipe.py`).

`scripts/train_world_model.py` parses `WorldModelArguments`, calls `build_world_model_training`, runs the shared
`hf_jepa.training` fit loop and saves the model, with `save_subgoal_graph` writing the graph the planner's
subgoals read (`hf_jepa.planning.subgoals`).
"""

from hf_jepa.world_model.recipe import (
    WorldModelArguments,
    WorldModelSetup,
    build_world_model,
    build_world_model_training,
    load_encoder,
    save_subgoal_graph,
    state_conditioning,
)

__all__ = [
    "WorldModelArguments",
    "WorldModelSetup",
    "build_world_model",
    "build_world_model_training",
    "load_encoder",
    "save_subgoal_graph",
    "state_conditioning",
]
