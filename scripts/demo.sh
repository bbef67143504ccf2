#!/usr/bin/env bash
# Set up (or reuse) .venv and run the main demo; results land under runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec .venv/bin/python -m rlcert.demo "$@"
