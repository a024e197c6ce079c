"""Quality of the neural codecs beside Codec 2 and Opus on held-out LibriSpeech clips at 8 kHz, and the
learning curve recorded by the build step.

    python benchmarks/svcodec_quality.py [--clips 20] [--metrics pesq,stoi,visqol] [-o results.json]

Held-out set: LibriSpeech test-other (speakers never trained on), excluding the clips the build step
validates on. Never /work/shared/data/svcodec-demo (the paper's demo clips are evaluation-only and are
not used here either). Everything runs through `svbench run`, like any codec.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from svbench.adapters.svcodec import NeuralCodecAdapter
from svbench.cards import get_card
from svbench.neural import data

GRID = {  # codec -> bitrates (Codec 2 and Opus at their nearest operating points)
    "svcodec": "1k,2k,3k,4k",
    "soundstream": "1k,2k,3k,4k",
    "codec2": "1.2k,2.4k,3.2k",
    "opus": "4k,6k",
}


def svbench_run(args: list[str], manifest: Path, metrics: str, workspace: Path) -> list[dict]:
    """`svbench run ARGS` on a manifest at 8 kHz; its summary rows."""
    cmd = [sys.executable, "-m", "svbench", "run", *args, "--dataset", str(manifest), "--metrics", metrics,
           "--eval-sr", "8000", "--workspace", str(workspace), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return list(json.loads(done.stdout)["summary"])
    except json.JSONDecodeError:
        print(done.stderr[-2000:], file=sys.stderr)
        raise


def held_out(out: Path, clips: int, max_s: float) -> Path:
    root = data.speech_root() / "librispeech"
    table = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    table = table[table.path.str.startswith("test-other/")]
    table = table[table.groupby("speaker").cumcount() >= 1]  # the first clip per speaker is validation
    table = table[table.duration_s.astype(float) <= max_s]
    table = table.groupby("speaker").head(max(1, clips // table.speaker.nunique())).head(clips)
    table = table.assign(path=[str(root / p) for p in table.path])
    table.to_csv(out, index=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--metrics", default="pesq,stoi")
    ap.add_argument("--codecs", default=",".join(GRID))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="svbench-quality-"))
    manifest = held_out(work / "heldout.csv", args.clips, args.max_seconds)
    summary = []
    for codec in args.codecs.split(","):
        run_args = ["--codec", codec, "--bitrate", GRID.get(codec, GRID["svcodec"]), "--workers", str(args.workers)]
        for row in svbench_run(run_args, manifest, args.metrics, work / "ws"):
            summary.append(row)
            kbps = row.get("measured_kbps", row.get("kbps")) or 0.0
            n_ok = row.get("n_ok", row.get("ok"))
            keys = [k for k in row if (k in ("pesq_nb", "stoi") or k.startswith("visqol")) and not k.endswith("_n")]
            print(f"{row['codec']:12s} {row['bitrate']:>6s} measured {kbps:6.3f} kbps  n={n_ok}"
                  + "".join(f"  {k} {row[k]:.3f}" for k in keys if isinstance(row[k], float)), flush=True)
    curves = {}
    for codec in ("svcodec", "soundstream"):
        path = NeuralCodecAdapter(get_card("codecs", codec)).checkpoint_path()
        if path and (path.parent / "valid.csv").is_file():
            with (path.parent / "valid.csv").open() as f:
                curves[codec] = list(csv.DictReader(f))
    out = {"heldout_manifest": [str(p) for p in pd.read_csv(manifest).path], "summary": summary,
           "learning_curves": curves}
    if args.output:
        args.output.write_text(json.dumps(out, indent=2, default=str))
    for codec, rows in curves.items():
        print(f"learning curve {codec} (validation clips, PESQ-NB / STOI):")
        for r in rows:
            print(f"  step {r['step']:>6s}  {float(r['kbps']):g}k  {float(r['pesq_nb']):.3f}  {float(r['stoi']):.3f}")


if __name__ == "__main__":
    main()
