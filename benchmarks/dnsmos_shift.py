"""How far DNSMOS moves when a decoded clip's start moves by a few milliseconds.

DNSMOS repeats a clip shorter than 9.01 s and averages 9.01 s windows every 1 s, so cutting a few
milliseconds off the start moves every window; this is why svbench scores non-intrusive metrics on the
whole decoded file and never on its alignment crop. For each decoded file (default: every codec output
of the SVCODEC demo page in ../shared/data/svcodec-demo/decoded), OVRL is computed with the first
0, 1, ..., MAX ms cut off; the output is the largest change per file and over all files.

    python benchmarks/dnsmos_shift.py [--max-ms 10] [--folder DIR] [--limit N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from svbench import audio
from svbench.metrics.base import load_metric

DEMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "svcodec-demo" / "decoded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=DEMO)
    parser.add_argument("--max-ms", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="at most this many files (0: all)")
    args = parser.parse_args()
    dnsmos = load_metric("dnsmos")
    files = sorted(args.folder.rglob("*.wav"))[: args.limit or None]
    spreads = []
    for path in files:
        clip = audio.read(path)
        ovrl = []
        for ms in range(args.max_ms + 1):
            values = dnsmos(None, clip.samples[ms * clip.sr // 1000:], clip.sr)
            ovrl.append(next(v for k, v in values.items() if "_ovrl" in k))
        spread = max(ovrl) - min(ovrl)
        spreads.append(spread)
        print(f"{spread:6.3f}  {clip.duration:5.2f} s  {path.relative_to(args.folder)}")
    spreads_a = np.array(spreads)
    print(f"\n{len(files)} files, start shifted 0..{args.max_ms} ms: DNSMOS OVRL range per file "
          f"median {np.median(spreads_a):.3f}, 90th percentile {np.percentile(spreads_a, 90):.3f}, "
          f"max {spreads_a.max():.3f}")


if __name__ == "__main__":
    main()
