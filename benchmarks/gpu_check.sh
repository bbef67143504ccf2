#!/usr/bin/env bash
# One prepared check for a machine with a CUDA device (<= 8 minutes; run it as is from the repository root):
#   * fleet throughput, S = 1, 4, 10, 20, 64, fp32 / TF32 / bf16 on the GPU, against sequential SB3 runs on the CPU
#     (benchmarks/fleet_throughput.py --device cuda: each measurement in its own process; one round here, to fit);
#   * the certify throughput ratio, when benchmarks/gpu_certify_check.py exists.
# Writes one markdown file, runs/gpu_check/gpu_check.md (OUT=dir to change), and prints it.
# Without a CUDA device it prints one line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is False): nothing measured"
    exit 0
fi
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
    echo "# GPU check, $(date -u +%FT%TZ), $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0), "torch", torch.__version__)')"
    echo
    timeout 390 "$PY" benchmarks/fleet_throughput.py --device cuda --members 1 4 10 20 64 \
        --precisions fp32 tf32 bf16 --rounds 1 --seconds 0.7 || echo "fleet throughput: failed or timed out (exit $?)"
    if [ -f benchmarks/gpu_certify_check.py ]; then
        echo
        timeout 60 "$PY" benchmarks/gpu_certify_check.py || echo "certify check: failed or timed out (exit $?)"
    fi
} 2>&1 | tee "$OUT/gpu_check.md"
