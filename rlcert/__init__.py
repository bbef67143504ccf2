"""rlcert: goal-conditioned RL (ReenGAGE, Multi-ReenGAGE) and certified robustness (randomized smoothing).

The environments ``rlcert/ContinuousSeek-v0``, ``rlcert/DriveSeek-v0``, ``rlcert/NoisySeek-v0`` and
``rlcert/BitFlipping-v0`` are registered with gymnasium as soon as both ``rlcert`` and ``gymnasium`` are imported
(in either order), without ``import rlcert`` itself importing gymnasium: ``import rlcert.certify`` stays free of
gymnasium and stable-baselines3.
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


class _RegisterEnvsAfterGymnasium(importlib.abc.MetaPathFinder):
    """Import hook: once ``gymnasium`` has been imported, import ``rlcert.envs`` (which registers the envs)."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 - importlib protocol
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)  # one shot; find the real spec with the remaining finders
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):  # noqa: ANN001, ANN202
            exec_module(module)
            importlib.import_module("rlcert.envs")

        spec.loader.exec_module = exec_then_register
        return spec


if "gymnasium" in sys.modules:
    from rlcert import envs  # noqa: F401  (registers the environments)
elif not any(isinstance(f, _RegisterEnvsAfterGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterEnvsAfterGymnasium())
