"""Training runs by concern (floor 3): :mod:`~rlcert.training.config` (YAML config, ``--set``, defaults, one-line
validation errors) and :mod:`~rlcert.training.factories` (env / agent-kwargs / replay-buffer construction).
One run and the ``rlcert train`` command are :mod:`rlcert.train`; run folders are :mod:`rlcert.runs`."""

from rlcert.training.config import (
    ALGO_KWARG_CHECKS,
    DEFAULT_EVAL,
    KNOWN_KEYS,
    RESERVED_ALGO_KWARGS,
    constructor_kwargs,
    import_object,
    load_config,
    resolve_algo,
    run_dir_of,
    set_by_path,
    validate_config,
)
from rlcert.training.factories import (
    build_algo_kwargs,
    build_envs,
    grow_replay_buffer,
    make_env,
    make_train_env,
)

__all__ = [
    "ALGO_KWARG_CHECKS", "DEFAULT_EVAL", "KNOWN_KEYS", "RESERVED_ALGO_KWARGS", "build_algo_kwargs", "build_envs",
    "constructor_kwargs", "grow_replay_buffer", "import_object", "load_config", "make_env", "make_train_env",
    "resolve_algo", "run_dir_of", "set_by_path", "validate_config",
]
