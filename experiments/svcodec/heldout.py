"""Write the held-out manifest that `svbench report svcodec-heldout` is made from.

    python -m experiments.svcodec.heldout [-o svcodec-heldout.csv] [--clips 20] [--max-seconds 10]

LibriSpeech test-other (speakers the recipes never train on), without the first clip of each speaker (the
build step validates on those), at most --max-seconds each, spread over the speakers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.svcodec.common import held_out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, default=Path("svcodec-heldout.csv"))
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    args = ap.parse_args()
    print(held_out(args.output, args.clips, args.max_seconds))


if __name__ == "__main__":
    main()
