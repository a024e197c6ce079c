#!/usr/bin/env bash
# Whole `svbench build svcodec` runs on one GPU, side by side, brought back to be evaluated on the CPU
# machine: svbench run and the svcodec experiments score it through a card copy whose [params] checkpoint
# points at its model.safetensors (docs/svcodec.md, "Another recipe").
# Usage (repository root): SVBENCH_SPEECH=/path/to/speech OUT=/tmp/gpu bash experiments/svcodec/gpu_builds.sh \
#     NAME=RECIPE:STEPS[:SECTION.KEY=VALUE,...] [...]   (the options as in `svbench build --set`)
# svbench must be installed there (its metrics are entry points; PYTHONPATH alone is not enough): e.g. a wheel of
# this checkout, `pip wheel --no-deps . -w .whl`, installed with pesq, pystoi, soundfile and soxr wheels.
# Each build stops at MAX_S seconds (default 480) if not done; OUT/NAME.tar.gz holds its folder without last.pt
# (model.safetensors, config.json, train_log.csv, valid.csv, the build's log): a build stopped before its end
# brings back its curve but no weights.
set -u
OUT=${OUT:-/tmp/svcodec_gpu}
RUNS=${RUNS:-/tmp/svcodec_gpu_runs}
MAX_S=${MAX_S:-480}
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"

for spec in "$@"; do
  IFS=: read -r recipe steps options <<<"${spec#*=}"
  name=${spec%%=*}; sets=()
  for o in ${options//,/ }; do sets+=(--set "$o"); done
  timeout "$MAX_S" python3 -m svbench build svcodec --recipe "$recipe" --steps "$steps" --out "$RUNS/$name" \
    --quiet --set train.threads=4 "${sets[@]}" >"$RUNS/$name.log" 2>&1 &
done
wait

for spec in "$@"; do
  name=${spec%%=*}
  cp "$RUNS/$name.log" "$RUNS/$name/build.log" 2>/dev/null
  tail -n 3 "$RUNS/$name.log"
  [ -f "$RUNS/$name/valid.csv" ] && cat "$RUNS/$name/valid.csv"
  tar -czf "$OUT/$name.tar.gz" -C "$RUNS" --exclude last.pt --exclude tensorboard "$name"
done
ls -la "$OUT"
