#!/usr/bin/env bash
# bench/compare.py as one process per split × seed × model, JOBS at a time, then one merge run
# that prints the table (ensembles and --transfer are computed there, from the stored runs).
#
# For a machine with many cores or a GPU: small models leave most of either idle, so parallel
# processes finish the whole comparison several times sooner. Each run is exactly the one
# compare.py would make on its own (same splits, seeds, data). On a GPU, set
# XLA_PYTHON_CLIENT_PREALLOCATE=false (JAX) so that the processes share its memory.
#
# Usage: bench/compare_parallel.sh DIR JOBS "SPLITS" "SEEDS" "MODELS" [compare.py options ...]
#   e.g. bench/compare_parallel.sh /tmp/cmp 12 "beat patient" "0 1 2" "paper cnn rhythm_sqrt_f1" \
#          --epochs 60 --data-cache /tmp/mitdb.npz
# Options after MODELS go to every run; the merge run also gets them, plus --transfer etc. if given.
set -euo pipefail
dir=$1 jobs=$2 splits=$3 seeds=$4 models=$5
shift 5
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/runs" "$dir/logs"
run() {  # one split, seed and model; its log says what went wrong
  local split=$1 seed=$2 model=$3
  shift 3
  python3 "$here/compare.py" --splits "$split" --seeds "$seed" --models "$model" \
    --results "$dir/runs/${split}_${model}_${seed}.json" "$@" \
    >"$dir/logs/${split}_${model}_${seed}.log" 2>&1 || echo "failed: $split $seed $model (see $dir/logs)"
}
for split in $splits; do for seed in $seeds; do for model in $models; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run "$split" "$seed" "$model" "$@" &
done; done; done
wait
# the runs' saved models are where the merge run's --transfer looks for them
mkdir -p "$dir/models" && find "$dir/runs/models" -name '*.keras' -exec mv -f {} "$dir/models/" \; 2>/dev/null || true
# shellcheck disable=SC2086
exec python3 "$here/compare.py" --splits $splits --seeds $seeds --models $models \
  --results "$dir/all.json" --merge "$dir"/runs/*.json "$@"
