"""svbench's own svcodec / soundstream beside the paper's SVCODEC, on the clips of the SVCODEC demo page.

    python benchmarks/svcodec_vs_paper.py [--metrics pesq,stoi] [--codecs svcodec,soundstream] [-o results.json]

The demo page ships SVCODEC outputs (0.5-4 kbps), Codec 2 and Opus for 5 LibriSpeech test-clean
utterances. Every system is scored against the same 16 kHz references, at 8 kHz, through `svbench run`
(the paper's files as the `precomputed` codec). These clips are evaluation-only: nothing trains or
tunes on them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from svcodec_quality import svbench_run  # beside this file

from svbench.neural import data

OURS = {"svcodec": "1k,2k,3k,4k", "soundstream": "1k,2k,3k,4k"}
PAPER_SYSTEMS = ["1 SVCODEC", "3 Codec2", "5 Opus"]


def demo_folder() -> Path:
    """The SVCODEC demo clips beside the speech corpora; exits saying so when they are not there."""
    demo = data.speech_root().parent / "svcodec-demo"
    if not demo.is_dir():
        sys.exit(f"{demo}: the SVCODEC demo clips are not there")
    return demo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", default="pesq,stoi")
    ap.add_argument("--codecs", default=",".join(OURS), help="svbench's codecs (cards) to score beside the paper's")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    demo = demo_folder()
    work = Path(tempfile.mkdtemp(prefix="svbench-vs-paper-"))
    refs = work / "refs.csv"
    subprocess.run([sys.executable, "-m", "svbench", "data", "import", "dir", str(demo / "reference" / "org"),
                    "-o", str(refs)], check=True, capture_output=True)
    decoded = [p.stem.split(" ", 1)[1] for p in (demo / "decoded" / "1 SVCODEC" / "3k").glob("*.wav")]
    table = pd.read_csv(refs, dtype=str, keep_default_na=False)
    table = table[table.id.isin(decoded)]  # the utterances the demo page decoded
    table.to_csv(refs, index=False)
    print(f"{len(table)} utterances: {', '.join(sorted(table.id))}", flush=True)
    paper_args = ["--codec", "precomputed", "--skip-missing"]
    for system in PAPER_SYSTEMS:
        paper_args += ["--decoded", str(demo / "decoded" / system)]
    summary = svbench_run(paper_args, refs, args.metrics, work / "paper")
    for codec in args.codecs.split(","):
        bitrates = OURS.get(codec, OURS["svcodec"])
        summary += svbench_run(["--codec", codec, "--bitrate", bitrates], refs, args.metrics, work / codec)
    keys = [k for k in ("pesq_nb", "stoi") if k in summary[0]]
    for row in summary:
        print(f"{row['codec']:12s} {row['bitrate']:>6s}  n={row.get('ok')}"
              + "".join(f"  {k} {row[k]:.3f}" for k in keys if isinstance(row.get(k), float)), flush=True)
    if args.output:
        args.output.write_text(json.dumps({"utterances": sorted(table.id), "summary": summary}, indent=2,
                                          default=str))


if __name__ == "__main__":
    main()
