#!/usr/bin/env bash
# The neural codecs on one NVIDIA GPU, in one pass that fits a short lease:
#   1. smoke: svcodec and soundstream `tiny`, 20 steps each with the GAN and validation, bf16 autocast;
#   2. training throughput (steps/s, seconds of audio/s): `paper` as carded and with model.channels=32,
#      and `tiny`, each alone on the GPU, no validation;
#   3. learning curves: `tiny` variants trained side by side for QUALITY_S seconds each (validation every
#      1000 steps), to compare with the CPU build's curve (the shipped checkpoint's valid.csv).
# Usage (repository root): SVBENCH_SPEECH=/path/to/speech OUT=/tmp/gpu bash experiments/svcodec/gpu.sh
# The speech folder is laid out like ../shared/data/speech (corpus/manifest.csv); OUT receives the logs,
# the runs' CSVs and a summary (gpu_summary.json).
set -u
OUT=${OUT:-/tmp/svcodec_gpu}
RUNS=${RUNS:-/tmp/svcodec_gpu_runs}
QUALITY_S=${QUALITY_S:-200}
SPEED_STEPS=${SPEED_STEPS:-100}
SPEED_MAX_S=${SPEED_MAX_S:-45}   # a throughput run stopped here still logged its speed so far
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1
build() { python3 -m svbench build "$@" --quiet; }

nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"

echo "== 1. smoke"
for codec in svcodec soundstream; do
  build "$codec" --recipe tiny --steps 20 --out "$RUNS/smoke-$codec" --set train.adv_start=10 \
    --set train.valid_every=20 --set train.log_every=5 --set train.valid_clips=2 >"$OUT/smoke-$codec.log" 2>&1 \
    || { cat "$OUT/smoke-$codec.log"; echo "smoke $codec failed"; exit 3; }
  tail -n 3 "$OUT/smoke-$codec.log"
done

echo "== 2. throughput"
speed() {  # name, then build arguments
  local name=$1; shift
  timeout "$SPEED_MAX_S" python3 -m svbench build "$@" --quiet --steps "$SPEED_STEPS" --out "$RUNS/speed-$name" --set train.valid_clips=0 \
    --set train.log_every=20 >"$OUT/speed-$name.log" 2>&1 || echo "speed $name failed"
  tail -n 2 "$OUT/speed-$name.log"
}
speed svcodec-paper svcodec --recipe paper
speed svcodec-paper-ch32 svcodec --recipe paper --set model.channels=32
speed svcodec-tiny svcodec --recipe tiny
speed svcodec-tiny-gan svcodec --recipe tiny --set train.adv_start=0

echo "== 3. learning curves, ${QUALITY_S} s each, side by side"
curve() {  # name, then --set arguments
  local name=$1; shift
  timeout "$QUALITY_S" python3 -m svbench build svcodec --recipe tiny --quiet --out "$RUNS/curve-$name" "$@" \
    >"$OUT/curve-$name.log" 2>&1
}
curve card &
curve batch32 --set train.batch_size=32 &
curve wide-batch32 --set train.batch_size=32 --set model.head_channels=256 &
wait

python3 - "$RUNS" "$OUT" <<'EOF'
import csv, json, sys
from pathlib import Path
runs, out = Path(sys.argv[1]), Path(sys.argv[2])
summary = {}
for run in sorted(runs.iterdir()):
    log = run / "train_log.csv"
    if not log.is_file():
        continue
    rows = list(csv.DictReader(log.open()))
    info = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    t = info.get("config", {}).get("train", {})
    entry = {"steps": int(rows[-1]["step"]), "seconds": float(rows[-1]["time_s"]),
             "parameters": info.get("parameters"), "batch_size": t.get("batch_size"), "segment_s": t.get("segment_s")}
    if len(rows) > 2:  # speed after the first logged row (CUDA start-up and autotuning excluded)
        a, b = rows[0], rows[-1]
        sps = (int(b["step"]) - int(a["step"])) / (float(b["time_s"]) - float(a["time_s"]))
        entry["steps_per_s"] = round(sps, 2)
        if t:
            entry["audio_s_per_s"] = round(sps * t["batch_size"] * t["segment_s"], 1)
    if (run / "valid.csv").is_file():
        entry["valid"] = list(csv.DictReader((run / "valid.csv").open()))
    summary[run.name] = entry
    for name in ("valid.csv", "train_log.csv"):
        if (run / name).is_file():
            (out / "csv").mkdir(exist_ok=True)
            (out / "csv" / f"{run.name}.{name}").write_bytes((run / name).read_bytes())
(out / "gpu_summary.json").write_text(json.dumps(summary, indent=1))
for k, v in summary.items():
    print(k, {x: y for x, y in v.items() if x != "valid"})
    for r in v.get("valid", []):
        print("   ", r)
EOF
