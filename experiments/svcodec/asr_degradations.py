"""What PocketSphinx needs to hear: its word error rate on the 10 SVCODEC demo references after controlled
degradations of the 8 kHz original (no codec), against what it hears in the undegraded original.

    python -m experiments.svcodec.asr_degradations [-o results.json]

Each degradation works on an STFT of the original (256-point Hann, hop 64) and leaves the rest alone: a
high band 6 dB down, phases randomised above 1 kHz or everywhere, magnitudes averaged over 64 or 128 ms,
and the spectral envelope alone (magnitudes averaged over ~150 Hz, phases random: no harmonics). It tells
which of a codec's faults can explain a high word error rate (docs/svcodec.md, Results). Evaluation-only
clips, as in asr.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jiwer
import numpy as np
from pocketsphinx import Decoder
from scipy.ndimage import uniform_filter1d
from scipy.signal import istft, stft

from experiments.svcodec.asr import transcribe
from experiments.svcodec.common import demo_folder
from svbench import audio

N, HOP = 256, 64


def through_stft(x: np.ndarray, change) -> np.ndarray:
    f, _, spec = stft(x, 8000, nperseg=N, noverlap=N - HOP)
    return istft(change(f, spec), 8000, nperseg=N, noverlap=N - HOP)[1][: len(x)].astype(np.float32)


def degradations(rng: np.random.Generator) -> dict:
    def random_phase(above_hz: float):
        return lambda f, s: np.where((f >= above_hz)[:, None], np.abs(s) * np.exp(2j * np.pi * rng.random(s.shape)), s)

    def smeared(frames: int):
        return lambda f, s: uniform_filter1d(np.abs(s), frames, axis=1, mode="nearest") * np.exp(1j * np.angle(s))

    def envelope_only(f: np.ndarray, s: np.ndarray) -> np.ndarray:  # magnitudes averaged over 5 bins (~150 Hz)
        return uniform_filter1d(np.abs(s), 5, axis=0, mode="nearest") * np.exp(2j * np.pi * rng.random(s.shape))

    return {
        "high band (above 1 kHz) 6 dB down": lambda f, s: s * np.where(f >= 1000, 0.5, 1.0)[:, None],
        "random phase above 1 kHz": random_phase(1000.0),
        "random phase everywhere": random_phase(0.0),
        "magnitudes averaged over 64 ms": smeared(1 + 64 * 8 // HOP),
        "magnitudes averaged over 128 ms": smeared(1 + 128 * 8 // HOP),
        "envelope only (no harmonics), random phase": envelope_only,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    refs = sorted((demo_folder() / "reference" / "org").glob("*/*/*.flac"))
    originals = [audio.resample(audio.read(p), 8000).samples for p in refs]
    asr = Decoder(samprate=16000)
    heard = [transcribe(asr, x, 8000) for x in originals]
    rows = []
    for name, change in degradations(np.random.default_rng(0)).items():
        hyps = [transcribe(asr, through_stft(x, change), 8000) for x in originals]
        rows.append({"degradation": name, "clips": len(hyps), "wer_vs_original": jiwer.wer(heard, hyps)})
        print(f"{name:45s} WER vs original {rows[-1]['wer_vs_original']:.2f}", flush=True)
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
