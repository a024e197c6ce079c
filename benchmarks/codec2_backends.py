"""Codec 2 in process (pycodec2) versus the ffmpeg program (libcodec2): which backend svbench uses.

    .venv/bin/python benchmarks/codec2_backends.py [N_CLIPS]

Encodes and decodes the same LibriSpeech clips (8 kHz) at 3200 and 1300 bit/s both ways and prints
wall seconds and the real-time factor (audio seconds per wall second) of each.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from svbench import audio
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.engine import make_codec

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librispeech"
FFMPEG_MODE = {3200: "3200", 1300: "1300"}


def ffmpeg_round_trip(pcm16: bytes, mode: str) -> bytes:
    enc = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "s16le", "-ar", "8000", "-ac", "1",
                          "-i", "pipe:0", "-c:a", "libcodec2", "-mode", mode, "-f", "codec2", "pipe:1"],
                         input=pcm16, capture_output=True, check=True).stdout
    return subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "codec2", "-i", "pipe:0",
                           "-f", "s16le", "pipe:1"], input=enc, capture_output=True, check=True).stdout


def main(n: int) -> None:
    table = pd.read_csv(SPEECH / "manifest.csv").head(n)
    clips = [audio.resample(audio.read(SPEECH / p), 8000).samples for p in table.path]
    seconds = sum(len(c) for c in clips) / 8000
    codec = make_codec(get_card("codecs", "codec2"))
    print(f"{n} clips, {seconds:.1f} s of audio, one process, one core")
    print(f"{'mode':>6} {'backend':<22} {'wall s':>8} {'x real time':>12}")
    for bps, mode in FFMPEG_MODE.items():
        t0 = time.perf_counter()
        for c in clips:
            codec.decode(codec.encode(c, Bitrate(bps)))
        t_py = time.perf_counter() - t0
        t0 = time.perf_counter()
        for c in clips:
            ffmpeg_round_trip(audio.to_int16(c).tobytes(), mode)
        t_ff = time.perf_counter() - t0
        print(f"{bps:>6} {'pycodec2 (in process)':<22} {t_py:>8.2f} {seconds / t_py:>12.0f}")
        print(f"{bps:>6} {'ffmpeg program':<22} {t_ff:>8.2f} {seconds / t_ff:>12.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
