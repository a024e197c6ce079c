"""What the svcodec experiments share: the paper's demo clips and the held-out LibriSpeech clips."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from svbench.settings import speech_root


def demo_folder() -> Path:
    """The SVCODEC demo clips beside the speech corpora; exits saying so when they are not there."""
    demo = speech_root().parent / "svcodec-demo"
    if not demo.is_dir():
        sys.exit(f"{demo}: the SVCODEC demo clips are not there")
    return demo


def held_out(out: Path, clips: int, max_s: float) -> Path:
    """A manifest of LibriSpeech test-other clips (speakers never trained on) other than the first clip of
    each speaker, which the build step validates on; at most ``max_s`` seconds each, spread over speakers."""
    root = speech_root() / "librispeech"
    table = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    table = table[table.path.str.startswith("test-other/")]
    table = table[table.groupby("speaker").cumcount() >= 1]  # the first clip per speaker is validation
    table = table[table.duration_s.astype(float) <= max_s]
    table = table.groupby("speaker").head(max(1, clips // table.speaker.nunique())).head(clips)
    table = table.assign(path=[str(root / p) for p in table.path])
    table.to_csv(out, index=False)
    return out
