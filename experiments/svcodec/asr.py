"""Intelligibility to a speech recognizer: word error rate of PocketSphinx on decoded 8 kHz speech.

    # pocketsphinx (its US-English model ships in the wheel) and jiwer are svbench dependencies
    python -m experiments.svcodec.asr [--codecs svcodec,codec2,opus] [-o results.json]

PESQ and STOI said little about what one hears from a small neural codec (a whispery voice with no
harmonics above ~700 Hz scored STOI 0.82); a recognizer is an independent check. The clips are the 10
LibriSpeech test-clean references of the SVCODEC demo page (the only held-out English with transcripts
here; evaluation only, nothing trains or tunes on them). Every system is decoded at 8 kHz and
up-sampled to the recognizer's 16 kHz. Two rates are reported:

- `wer_text`: against the LibriSpeech transcript;
- `wer_vs_original`: against what the recognizer hears in the 8 kHz original over the same span, so that
  the recognizer's own errors on narrowband speech (47 % here) cancel.

The paper's demo outputs cover 5 of the 10 clips, whole utterances (the same durations as the originals,
within 30 ms), so their rows use those 5.

PocketSphinx is a weak recognizer: read differences of less than ~10 points as noise. A steadier number
beside it, `feature_dist`: the mean Euclidean distance between the decoded and the original MFCCs (c1-c12 of
31 mel bands, 25 ms frames every 10 ms, each utterance's mean removed as PocketSphinx's CMN does) over the
frames within 40 dB of the original's loudest, after delay alignment: what the recognizer's front end sees.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jiwer
import librosa
import numpy as np
import soxr
from pocketsphinx import Decoder

from experiments.svcodec.common import demo_folder
from svbench import align, audio
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.engine import make_codec

GRID = {"svcodec": "1k,2k,3k,4k", "soundstream": "1k,2k,3k,4k", "codec2": "1.2k,2.4k,3.2k", "opus": "6k"}
PAPER = {"1 SVCODEC": ["1k", "2k", "3k", "4k"], "3 Codec2": ["1k2", "3k2"]}


def transcribe(decoder: Decoder, samples: np.ndarray, sr: int) -> str:
    pcm = audio.to_int16(soxr.resample(samples.astype(np.float32), sr, 16000))
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp else ""


def mfcc_cmn(x: np.ndarray, sr: int) -> np.ndarray:
    c = librosa.feature.mfcc(y=x, sr=sr, n_mfcc=13, n_fft=256, win_length=200, hop_length=sr // 100, n_mels=31,
                             fmin=133.0, fmax=min(3800.0, sr / 2))[1:].T
    return c - c.mean(0)


def feature_distance(original: np.ndarray, decoded: np.ndarray, sr: int) -> float:
    """Mean MFCC distance over the original's frames within 40 dB of its loudest (module docstring)."""
    ref, deg = align.apply(original, decoded, align.estimate_delay(original, decoded, sr).delay_samples)
    a, b = mfcc_cmn(ref, sr), mfcc_cmn(deg, sr)
    n = min(len(a), len(b))
    db = librosa.amplitude_to_db(librosa.feature.rms(y=ref, frame_length=200, hop_length=sr // 100)[0], ref=np.max)
    loud = db[:n] > -40
    return float(np.linalg.norm(a[:n] - b[:n], axis=1)[loud].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codecs", default="svcodec,codec2,opus")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    demo = demo_folder()
    asr = Decoder(samprate=16000)
    refs = sorted((demo / "reference" / "org").glob("*/*/*.flac"))
    originals = {p.stem: audio.resample(audio.read(p), 8000).samples for p in refs}
    truth = {p.stem: (p.parent / "text.txt").read_text().strip().lower() for p in refs}
    heard = {u: transcribe(asr, x, 8000) for u, x in originals.items()}
    rows = [{"system": "original 8 kHz", "bitrate": "", "clips": len(refs),
             "wer_text": jiwer.wer(list(truth.values()), list(heard.values())), "wer_vs_original": 0.0,
             "feature_dist": 0.0}]
    for name in args.codecs.split(","):
        codec = make_codec(get_card("codecs", name))
        for label in GRID.get(name, GRID["svcodec"]).split(","):  # another card: svcodec's grid
            bitrate = Bitrate.parse(label)
            decoded = {u: codec.decode(codec.encode(x, bitrate)) for u, x in originals.items()}
            hyps = {u: transcribe(asr, y, 8000) for u, y in decoded.items()}
            dist = np.mean([feature_distance(originals[u], y, 8000) for u, y in decoded.items()])
            rows.append({"system": name, "bitrate": label, "clips": len(hyps), "feature_dist": float(dist),
                         "wer_text": jiwer.wer([truth[u] for u in hyps], list(hyps.values())),
                         "wer_vs_original": jiwer.wer([heard[u] for u in hyps], list(hyps.values())),
                         "heard": hyps})
            print({k: v for k, v in rows[-1].items() if k != "heard"}, flush=True)
    for system, folders in PAPER.items():
        for folder in folders:
            hyps, same_span, dists = {}, {}, []
            for f in sorted((demo / "decoded" / system / folder).glob("*.wav")):
                utt = f.stem.split(" ", 1)[1]
                decoded = audio.resample(audio.read(f), 8000).samples
                hyps[utt] = transcribe(asr, decoded, 8000)
                same_span[utt] = transcribe(asr, originals[utt][: len(decoded)], 8000)
                dists.append(feature_distance(originals[utt][: len(decoded)], decoded, 8000))
            rows.append({"system": f"paper {system.split(' ', 1)[1]}", "bitrate": Bitrate.parse(folder).label,
                         "clips": len(hyps), "feature_dist": float(np.mean(dists)),
                         "wer_text": jiwer.wer([truth[u] for u in hyps], list(hyps.values())),
                         "wer_vs_original": jiwer.wer([same_span[u] for u in hyps], list(hyps.values())),
                         "heard": hyps})
            print({k: v for k, v in rows[-1].items() if k != "heard"}, flush=True)
    if args.output:
        args.output.write_text(json.dumps({"transcripts": truth, "heard_in_original": heard, "rows": rows}, indent=2))
    print(f"{'system':16s} {'bitrate':>7s} {'clips':>5s} {'WER text':>9s} {'WER vs 8 kHz original':>22s}"
          f" {'MFCC dist':>9s}")
    for r in rows:
        print(f"{r['system']:16s} {r['bitrate']:>7s} {r['clips']:5d} {r['wer_text']:9.3f} {r['wer_vs_original']:22.3f}"
              f" {r['feature_dist']:9.2f}")


if __name__ == "__main__":
    main()
