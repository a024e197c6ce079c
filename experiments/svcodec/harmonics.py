"""Harmonics above 700 Hz, and which path of the neural decoders makes the sound.

    python -m experiments.svcodec.harmonics [--clips 20] [-o results.json]

A listener hears `tiny` as hoarse because its voiced spectrum above ~700 Hz is noise between the
harmonics (docs/svcodec.md). This puts a number on it: the **harmonic peak-to-valley ratio**, the mean
over voiced 64 ms frames (f0 by pyworld Harvest on the original) and over harmonics k in 700-3000 Hz of
10 log10(power within ±0.2 f0 of k f0 / power within ±0.2 f0 of (k + 0.5) f0). Noise scores 0 dB.

For each neural codec at 2 and 4 kbps it scores the network's output, the output after the card's
decoder-side postfilter (what `svbench run` gives), and, for models with the shortcut
(`shortcut = true`), each path of the decoder alone: its energy relative to the input and its PESQ-NB.
Codec 2 and Opus are the reference points. Held-out clips: `common.held_out`
(LibriSpeech test-other, never trained on; not the svcodec-demo clips).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyworld
import torch
from pesq import pesq

from experiments.svcodec.common import held_out
from svbench import audio
from svbench.adapters.svcodec import NeuralCodecAdapter
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.engine import make_codec

SR = 8000
REFERENCES = {"codec2": ["1.2k", "3.2k"], "opus": ["6k"]}


def peak_to_valley_db(y: np.ndarray, f0: np.ndarray, hop: int = 40, n_fft: int = 512) -> float:
    """f0: one value per ``hop`` samples (0 = unvoiced)."""
    window, ratios = np.hanning(n_fft), []
    freqs = np.arange(n_fft // 2 + 1) * SR / n_fft
    for i, f in enumerate(f0):
        start = i * hop - n_fft // 2
        if f < 70 or start < 0 or start + n_fft > len(y):
            continue
        power = np.abs(np.fft.rfft(y[start:start + n_fft] * window)) ** 2 + 1e-12
        for k in range(int(np.ceil(700 / f)), int(3000 / f)):
            peak = power[np.abs(freqs - k * f) < 0.2 * f].mean()
            valley = power[np.abs(freqs - (k + 0.5) * f) < 0.2 * f].mean()
            ratios.append(10 * np.log10(peak / valley))
    return float(np.mean(ratios)) if ratios else float("nan")


def score(name: str, bitrate: str, outputs: list[np.ndarray], clips: list[np.ndarray], f0s: list) -> dict:
    n = [min(len(x), len(y)) for x, y in zip(clips, outputs, strict=True)]
    triples = list(zip(clips, outputs, n, strict=True))
    row = {"system": name, "bitrate": bitrate,
           "peak_to_valley_db": float(np.mean([peak_to_valley_db(y[:k], f)
                                               for (_, y, k), f in zip(triples, f0s, strict=True)])),
           "pesq_nb": float(np.mean([pesq(SR, x[:k], y[:k], "nb") for x, y, k in triples])),
           "energy_db": float(np.mean([10 * np.log10(np.mean(y[:k] ** 2) / np.mean(x[:k] ** 2))
                                       for x, y, k in triples]))}
    print(f"{name:34s} {bitrate:>5s}  peak/valley {row['peak_to_valley_db']:5.2f} dB  "
          f"PESQ-NB {row['pesq_nb']:.2f}  energy {row['energy_db']:+6.1f} dB", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--codecs", default="svcodec,soundstream")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    manifest = held_out(Path(tempfile.mkdtemp()) / "heldout.csv", args.clips, 10.0)
    clips = [audio.resample(audio.read(p), SR).samples for p in pd.read_csv(manifest).path]
    f0s = [pyworld.harvest(x.astype(np.float64), SR, frame_period=1000 * 40 / SR)[0] for x in clips]
    rows = [score("original", "", clips, clips, f0s)]
    for name in args.codecs.split(","):
        codec = NeuralCodecAdapter(get_card("codecs", name))
        model = codec.model
        for label in ("2k", "4k"):
            n_q = codec._n_q(Bitrate.parse(label))
            with torch.no_grad():
                inputs = [model.decoder_inputs(model.encode_audio(x, n_q)) for x in clips]  # latents, f0
                network = [model.decoder(z, *cond)[0, 0].numpy() for z, cond in inputs]
                paths = {}
                if model.config.shortcut:  # the deep path takes the f0 of a source-filter model, the linear not
                    paths["deep"] = [model.decoder.deep(z, *cond)[0, 0].numpy() for z, cond in inputs]
                    paths["linear"] = [model.decoder.linear(z)[0, 0].numpy() for z, _ in inputs]
            rows.append(score(f"{name} network output", label, network, clips, f0s))
            served = [codec.decode(codec.encode(x, Bitrate.parse(label))) for x in clips]
            rows.append(score(f"{name} + postfilter ({codec.postfilter})", label, served, clips, f0s))
            for path, alone in paths.items():
                rows.append(score(f"{name} {path} path alone", label, alone, clips, f0s))
    for name, labels in REFERENCES.items():
        codec = make_codec(get_card("codecs", name))
        if codec.unavailable_reason():
            print(f"{name}: skipped ({codec.unavailable_reason()})")
            continue
        for label in labels:
            decoded = [codec.decode(codec.encode(x, Bitrate.parse(label))) for x in clips]
            rows.append(score(name, label, decoded, clips, f0s))
    if args.output:
        args.output.write_text(json.dumps({"heldout_manifest": list(pd.read_csv(manifest).path), "rows": rows},
                                          indent=1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
