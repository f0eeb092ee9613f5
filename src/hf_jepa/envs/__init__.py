"""hf_jepa.envs: gymnasium environments for goal-image planning and data collection.

Importing this package registers (idempotently):

- ``hf_jepa/TwoRooms-v0``: :class:`TwoRoomsEnv`, the built-in Two-Rooms navigation env (image obs, goal images)
- ``hf_jepa/PushT-v0``: :class:`PushTGoalEnv`, gym-pusht's Push-T with image obs, goal images rendered from states
  and relative actions
- ``hf_jepa/TwoLinkArm-v0``: :class:`TwoLinkArmEnv`, a tiny 2-link arm with vector obs (wrap it in
  :class:`GoalImageEnv`, or use :func:`make_goal_env`)

``gymnasium.make("hf_jepa/TwoRooms-v0", image_size=128)`` passes keyword arguments to the env's config.
"""

import gymnasium as gym

from .exploration import CorrelatedRandomPolicy, ExplorationPolicy, TwoRoomsExplorer, make_exploration_policy
from .goal_wrapper import (
    BUILTIN_ENVS,
    GoalImageEnv,
    RandomRolloutGoal,
    check_env_name,
    default_state_fn,
    l2_distance,
    make_goal_env,
    resize_image,
)
from .pusht import PushTConfig, PushTGoalEnv
from .pusht_policy import PushTExplorer
from .two_link_arm import TwoLinkArmEnv
from .two_rooms import TwoRoomsConfig, TwoRoomsEnv

TWO_ROOMS_ID = "hf_jepa/TwoRooms-v0"
TWO_LINK_ARM_ID = "hf_jepa/TwoLinkArm-v0"
PUSHT_ID = "hf_jepa/PushT-v0"


def _register() -> None:
    # Truncation is done inside the envs (config max_episode_steps), so no TimeLimit here.
    if TWO_ROOMS_ID not in gym.registry:
        gym.register(id=TWO_ROOMS_ID, entry_point="hf_jepa.envs.two_rooms:TwoRoomsEnv")
    if TWO_LINK_ARM_ID not in gym.registry:
        gym.register(id=TWO_LINK_ARM_ID, entry_point="hf_jepa.envs.two_link_arm:TwoLinkArmEnv")
    if PUSHT_ID not in gym.registry:
        gym.register(id=PUSHT_ID, entry_point="hf_jepa.envs.pusht:PushTGoalEnv")


_register()

__all__ = [
    "BUILTIN_ENVS",
    "PUSHT_ID",
    "TWO_LINK_ARM_ID",
    "TWO_ROOMS_ID",
    "CorrelatedRandomPolicy",
    "ExplorationPolicy",
    "GoalImageEnv",
    "PushTConfig",
    "PushTExplorer",
    "PushTGoalEnv",
    "RandomRolloutGoal",
    "TwoLinkArmEnv",
    "TwoRoomsConfig",
    "TwoRoomsEnv",
    "TwoRoomsExplorer",
    "check_env_name",
    "default_state_fn",
    "l2_distance",
    "make_exploration_policy",
    "make_goal_env",
    "resize_image",
]
