"""A fleet in one process: S independent DDPG/TD3 (+ReenGAGE) + HER learners trained together on stacked networks.

* :mod:`rlcert.fleet.stacked`      stacked MLPs (one batched matmul per layer for all members)
* :mod:`rlcert.fleet.adam`         Adam on stacked parameters, a learning rate per member
* :mod:`rlcert.fleet.td3`          the DDPG/TD3/ReenGAGE update for all members at once
* :mod:`rlcert.fleet.replay`       per-member episode replay in one tensor, HER "future" relabelling
* :mod:`rlcert.fleet.vector_envs`  torch-vectorised ContinuousSeek and Bit-Flipping
* :mod:`rlcert.fleet.trainer`      the training loop (SB3's schedule), evaluation, per-member random generators
* :mod:`rlcert.fleet.config`       which ``rlcert train`` configs the fleet supports, settings from a config
* :mod:`rlcert.fleet.run`          ``rlcert train --seeds``: per-member CSVs, checkpoints, resume, export
* :mod:`rlcert.fleet.export`       one member <-> an ordinary agent (.zip)
"""

from rlcert.fleet.run import parse_seeds, train_fleet
from rlcert.fleet.trainer import Fleet

__all__ = ["Fleet", "parse_seeds", "train_fleet"]
