#!/usr/bin/env bash
# ContinuousSeek d=5 and d=10: DDPG+HER vs ReenGAGE (alpha=0.2), 3 seeds, thesis hyper-parameters (Tables G.1/G.2)
# with a CPU budget (see docs/results/continuous_seek.md). One process at a time, one torch thread.
# Interrupted? Run again: finished runs are skipped, unfinished ones resume from their latest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-runs/continuous_seek}
STEPS_D5=${STEPS_D5:-6000}
STEPS_D10=${STEPS_D10:-6000}
for seed in 0 1 2; do
  for d in 5 10; do
    steps=$STEPS_D5; [ "$d" = 10 ] && steps=$STEPS_D10
    for algo in ddpg_her reengage; do
      name=continuous_seek_d${d}_${algo}
      if [ -f "$OUT/$name/seed$seed/model.zip" ]; then echo "skip $name seed $seed"; continue; fi
      echo "== $name seed $seed ($steps steps) $(date -u +%T)"
      $PY -m rlcert.train --config configs/$name.yaml --seed $seed --log-dir "$OUT" --threads 1 --no-progress \
        --resume --set total_timesteps=$steps --set eval.freq=1000
    done
  done
done
$PY -m rlcert.plots "$OUT"/continuous_seek_d5_* --out docs/results/continuous_seek_d5.png --title "ContinuousSeek d=5"
$PY -m rlcert.plots "$OUT"/continuous_seek_d10_* --out docs/results/continuous_seek_d10.png --title "ContinuousSeek d=10"
