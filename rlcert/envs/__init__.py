"""Goal-conditioned environments, registered as ``rlcert/<Name>-v0`` on import.

>>> import gymnasium as gym, rlcert
>>> env = gym.make("rlcert/ContinuousSeek-v0", d=10)
"""

from gymnasium.envs.registration import register, registry

from rlcert.envs.bit_flipping import BitFlippingEnv, bit_flipping_reward
from rlcert.envs.continuous_seek import ContinuousSeekEnv, continuous_seek_reward
from rlcert.envs.drive_seek import DriveSeekEnv, greedy_drive_action
from rlcert.envs.goal_set import goal_set_reward, item_rewards, pack_goal_set, split_goal_set
from rlcert.envs.hand_reach import SuccessBookkeeping, make_hand_reach
from rlcert.envs.noisy_seek import NoisySeekEnv, greedy_action, sample_clustered_goals

ENV_IDS = {
    "rlcert/ContinuousSeek-v0": "rlcert.envs.continuous_seek:ContinuousSeekEnv",
    "rlcert/DriveSeek-v0": "rlcert.envs.drive_seek:DriveSeekEnv",
    "rlcert/NoisySeek-v0": "rlcert.envs.noisy_seek:NoisySeekEnv",
    "rlcert/BitFlipping-v0": "rlcert.envs.bit_flipping:BitFlippingEnv",
}
for _id, _entry in ENV_IDS.items():
    if _id not in registry:
        # Episode length is handled inside each env (kwarg max_steps), so no TimeLimit wrapper is added.
        register(id=_id, entry_point=_entry, disable_env_checker=False)

__all__ = [
    "ENV_IDS", "BitFlippingEnv", "ContinuousSeekEnv", "DriveSeekEnv", "NoisySeekEnv", "SuccessBookkeeping",
    "bit_flipping_reward", "continuous_seek_reward", "goal_set_reward", "greedy_action", "greedy_drive_action",
    "item_rewards", "make_hand_reach", "pack_goal_set", "sample_clustered_goals", "split_goal_set",
]
