#!/usr/bin/env bash
# Set up (or reuse) .venv with the dev and sweep extras, lint, and run the test suite (slow tests included unless -m "not slow" is passed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# The sweep extra (Ray Tune) on top, with torch held at the version setup_env.sh installed first.
if ! .venv/bin/python -c "import ray.tune" 2>/dev/null; then
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,sweep]"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MPLBACKEND=Agg
.venv/bin/python -m ruff check rlcert tests scripts benchmarks
exec .venv/bin/python -m pytest -q "$@"
