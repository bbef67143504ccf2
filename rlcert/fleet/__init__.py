"""A fleet in one process: S independent learners of one agent family trained together on stacked networks.

Structure (floor 4: imports the agents' math, floor 2, and the envs, floor 1):

* :mod:`rlcert.fleet.family`       the plug-in interface :class:`FleetAlgorithm` (a family: S members' stacked
  networks, optimisers and update), :class:`MemberSettings` (the settings base), shared helpers (features,
  polyak, bf16 autocast, per-member random draws)
* :mod:`rlcert.fleet.td3`          DDPG / TD3 (+ReenGAGE) family        :mod:`rlcert.fleet.sac`  SAC (+ReenGAGE)
* :mod:`rlcert.fleet.dqn`          DQN / ReenGAGE-DQN (Bit-Flipping)    :mod:`rlcert.fleet.goal_set`  Multi-ReenGAGE
  DDPG / TD3 on DeepSets (DriveSeek, NoisySeek; the agents' GoalSetEncoder per member)
* :mod:`rlcert.fleet.stacked`      stacked MLPs (one batched matmul per layer for all members; layers as the
  agents' :data:`rlcert.agents.goal_gradient.Layers`, so the agents' functions run on them with a member axis)
* :mod:`rlcert.fleet.adam`         Adam on stacked parameters (fused kernel / ``torch._foreach_*``), an lr per member
* :mod:`rlcert.fleet.replay`       per-member episode replay in one tensor, HER "future" relabelling
* :mod:`rlcert.fleet.vector_envs`  re-export of the envs' torch twins (:mod:`rlcert.envs.torch_vector`)
* :mod:`rlcert.fleet.trainer`      the training loop (SB3's schedule), evaluation, per-member random generators
* :mod:`rlcert.fleet.config`       :data:`~rlcert.fleet.config.FAMILIES` (algo name -> family class) and
  :data:`~rlcert.fleet.config.TORCH_ENVS`; settings read from a probe of the config's own agent
* :mod:`rlcert.fleet.run`          ``rlcert train --seeds``: per-member CSVs, checkpoints, resume, export
* :mod:`rlcert.fleet.export`       one member <-> an ordinary agent (.zip), via the family's ``member_pairs``

The math is the agents' (:mod:`rlcert.agents.goal_gradient`: ``affine``, ``relu_mlp_input_gradient``,
``td3_target_and_goal_gradient``, ``target_and_goal_gradient``, ``sparse_mask``, ``reengage_penalty`` with
``batch_dims=2``), applied with a leading member axis; defaults come from the agent classes and SB3.

Adding a family: subclass :class:`~rlcert.fleet.family.FleetAlgorithm` (``settings_from_agent``, ``act``,
``explore``, ``update``, ``modules``, ``optimizers``, ``member_pairs``; optionally ``on_step``, ``extra_state``;
member k draws only from ``generators[k]``), register its algo names in ``FAMILIES`` and, if needed, its torch env
in ``TORCH_ENVS``; set ``env_ids`` (the envs it trains on) and, for configs other than MultiInputPolicy MLPs,
``standard_config = False`` with its own ``config_reason``. ``Fleet(settings, schedule, seeds, env_cls, env_kwargs,
family)`` then trains it.
Members are independent: member k's parameters are bit-identical whatever the other members (tested at width 256).
"""

from rlcert.fleet.run import parse_seeds, train_fleet
from rlcert.fleet.trainer import Fleet

__all__ = ["Fleet", "parse_seeds", "train_fleet"]
