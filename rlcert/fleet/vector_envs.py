"""Re-export of the torch-vectorised envs, which now live beside the gymnasium envs (floor 1) and share their rules:
:mod:`rlcert.envs.torch_vector`. Kept so that code importing ``rlcert.fleet.vector_envs`` keeps working."""

from rlcert.envs.torch_vector import (
                                      TORCH_TWINS,
                                      TorchBitFlipping,
                                      TorchContinuousSeek,
                                      TorchDriveSeek,
                                      TorchGoalEnv,
                                      TorchGoalSetEnv,
                                      TorchNoisySeek,
)

__all__ = ["TORCH_TWINS", "TorchBitFlipping", "TorchContinuousSeek", "TorchDriveSeek", "TorchGoalEnv",
           "TorchGoalSetEnv", "TorchNoisySeek"]
