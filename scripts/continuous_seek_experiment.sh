#!/usr/bin/env bash
# ContinuousSeek d=5/10/20: DDPG+HER vs ReenGAGE (alpha 0.2, published coordinate-mean convention), Table G.1/G.2
# settings, seeds 0-4 (see docs/results/continuous_seek.md for the budget actually run). Thin wrapper around the
# resumable job queue: runs under runs/single_goal/continuous_seek/, finished runs are skipped, unfinished ones
# resume from their checkpoint; two training processes with one torch thread each (JOBS=1 for one).
# Extra arguments go to the driver, e.g. --seeds 0 1 2 --only "d10_" --steps-scale 0.5.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OMP_NUM_THREADS=1 PYTHONPATH=. $PY scripts/single_goal_experiment.py --suite continuous_seek --jobs "${JOBS:-2}" "$@"
