#!/usr/bin/env bash
# Set up (or reuse) .venv, lint, and run the test suite (slow tests included unless -m "not slow" is passed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MPLBACKEND=Agg
.venv/bin/python -m ruff check rlcert tests scripts benchmarks demos
exec .venv/bin/python -m pytest -q "$@"
