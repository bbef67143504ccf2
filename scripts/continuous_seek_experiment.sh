#!/usr/bin/env bash
# ContinuousSeek d=5 and d=10: DDPG+HER vs ReenGAGE (alpha=0.2), 3 seeds, thesis hyper-parameters (Tables G.1/G.2)
# with a CPU budget (see docs/results/continuous_seek.md). One process at a time, one torch thread.
# Interrupted, or a larger budget wanted? Run again: runs that reached the budget are skipped, the others resume
# from their latest checkpoint (model + replay buffer) and keep their eval.csv rows.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-runs/continuous_seek}
STEPS_D5=${STEPS_D5:-6000}
STEPS_D10=${STEPS_D10:-20000}
for seed in 0 1 2; do
  for d in 5 10; do
    steps=$STEPS_D5; [ "$d" = 10 ] && steps=$STEPS_D10
    for algo in ddpg_her reengage; do
      name=continuous_seek_d${d}_${algo}
      run="$OUT/$name/seed$seed"
      last=$(tail -n 1 "$run/eval.csv" 2>/dev/null | cut -d, -f1 || true)
      if [ -f "$run/model.zip" ] && [ "${last:-0}" -ge "$steps" ] 2>/dev/null; then
        echo "skip $name seed $seed (at $last steps)"; continue
      fi
      echo "== $name seed $seed ($steps steps) $(date -u +%T)"
      $PY -m rlcert.train --config configs/$name.yaml --seed $seed --log-dir "$OUT" --threads 1 --no-progress \
        --resume --set total_timesteps=$steps --set eval.freq=1000
    done
  done
done
$PY -m rlcert.plots "$OUT"/continuous_seek_d5_* --out docs/results/continuous_seek_d5.png --title "ContinuousSeek d=5"
$PY -m rlcert.plots "$OUT"/continuous_seek_d10_* --out docs/results/continuous_seek_d10.png --title "ContinuousSeek d=10"
