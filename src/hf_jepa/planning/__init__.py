"""hf_jepa.planning: goal-image planning with a world model.

    configs.py              CEMConfig (Meta V-JEPA 2-AC / LeWM presets), MPPIConfig, their validation,
                            WORLD_MODEL_PLANNER_DEFAULTS (the world-model planner's settings, stated once;
                            ENV_PLANNER_RECIPES: per-env changes)
    search.py               cem, mppi, colored_noise, project_actions, shift_plan, PlanResult
    energy.py               latent_energy (L1 as Meta, MSE as LeWM)
    mpc.py                  run_mpc: the MPC episode loop over a gymnasium env, Episode
    world_model_planner.py  WorldModelPlanner: images -> latents -> KV-cached rollouts -> CEM / MPPI
    subgoals.py             LatentSubgoalGraph: waypoints along the training data's shortest path to the goal
    adaptation.py           OnlineAdaptation: test-time adaptation of the predictor during an episode
    evaluation.py           evaluate_planning: N episodes, success rate, GIF and energy plot
    dataset_goals.py        sample_dataset_goals: start / goal states from held-out trajectories (LeWM's protocol)
    run.py                  PlanningArguments, run_planning: the evaluation job (scripts/evaluate_planning.py)

    planner = WorldModelPlanner(model, CEMConfig(horizon=5, num_samples=300, topk=30, iterations=10))
    episode = run_mpc(env, planner.plan_fn(), max_steps=100, seed=0)
"""

from hf_jepa.planning.adaptation import ADAPT_LR, ADAPT_STEPS, OnlineAdaptation
from hf_jepa.planning.configs import (
    ENV_PLANNER_RECIPES,
    WORLD_MODEL_PLANNER_DEFAULTS,
    CEMConfig,
    MPPIConfig,
    planner_defaults,
)
from hf_jepa.planning.dataset_goals import GOAL_OFFSET, GoalTask, GoalTasks, default_budget, sample_dataset_goals
from hf_jepa.planning.energy import latent_energy
from hf_jepa.planning.evaluation import (
    PlanningEvaluation,
    check_model_fits_env,
    evaluate_planning,
    pick_episode,
    planner_config,
    plot_energy,
    save_episode_gif,
)
from hf_jepa.planning.mpc import Episode, PlanFn, run_mpc
from hf_jepa.planning.search import EnergyFn, PlanResult, cem, colored_noise, mppi, project_actions, shift_plan
from hf_jepa.planning.subgoals import (
    GRAPH_FILENAME,
    LatentSubgoalGraph,
    SubgoalConfig,
    dataset_latents,
    episode_nodes,
    place_links,
    save_graph,
    subgoal_graph_from,
)
from hf_jepa.planning.world_model_planner import WorldModelPlanner, frame_weights, frames_to_tensor

__all__ = [
    "WORLD_MODEL_PLANNER_DEFAULTS",
    "ENV_PLANNER_RECIPES",
    "planner_defaults",
    "ADAPT_LR",
    "ADAPT_STEPS",
    "GOAL_OFFSET",
    "GRAPH_FILENAME",
    "CEMConfig",
    "EnergyFn",
    "Episode",
    "GoalTask",
    "GoalTasks",
    "LatentSubgoalGraph",
    "MPPIConfig",
    "OnlineAdaptation",
    "PlanFn",
    "PlanResult",
    "PlanningEvaluation",
    "SubgoalConfig",
    "WorldModelPlanner",
    "cem",
    "check_model_fits_env",
    "colored_noise",
    "dataset_latents",
    "default_budget",
    "episode_nodes",
    "evaluate_planning",
    "frame_weights",
    "frames_to_tensor",
    "latent_energy",
    "mppi",
    "pick_episode",
    "place_links",
    "planner_config",
    "plot_energy",
    "project_actions",
    "run_mpc",
    "sample_dataset_goals",
    "save_episode_gif",
    "save_graph",
    "shift_plan",
    "subgoal_graph_from",
]
