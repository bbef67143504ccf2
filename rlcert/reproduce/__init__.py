"""The thesis' figures by one command (floor 5): ``rlcert reproduce EXPERIMENT`` trains every method of an
experiment through the fleet (resumable), then writes one results page with curves, a table and a verdict.

* :mod:`rlcert.reproduce.experiments`  :data:`EXPERIMENTS` (figure, methods = configs, seeds, steps, finding) and
  the cost figures of ``costs.yaml`` (member env-steps/s per family)
* :mod:`rlcert.reproduce.verdict`      the verdict rule (one-sided Welch test / closeness at the final step)
* :mod:`rlcert.reproduce.run`          plan (all checks before writing), training with resume, reference policies
* :mod:`rlcert.reproduce.page`         the results page and its figure
* :mod:`rlcert.reproduce.cli`          the command
"""

from rlcert.reproduce.experiments import EXPERIMENTS, Comparison, Experiment, Method
from rlcert.reproduce.run import plan, run_experiment

__all__ = ["EXPERIMENTS", "Comparison", "Experiment", "Method", "plan", "run_experiment"]
