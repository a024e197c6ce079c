"""The embedded default dataset, for a fresh machine with no corpus. A DEMO: never report its numbers.

Real speech that ships with an installed dependency (pysptk's CMU ARCTIC utterance arctic_a0007,
16 kHz) plus, when espeak-ng is installed, Harvard sentences synthesized in several voices, made once
into the cache folder.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

from svbench import audio, manifest, settings

# IEEE Harvard sentences, list 1 (public domain, IEEE Trans. Audio Electroacoust. 17(3), 1969)
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m3")
NAME = "demo"




def arctic_example() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysptk imports pkg_resources, which warns
        from pysptk.util import example_audio_file
    return Path(example_audio_file())


def build(folder: Path | None = None) -> Path:
    """Write (once) the demo clips and their manifest; return the manifest path."""
    folder = folder or settings.cache_root() / "demo-data"
    out = folder / "manifest.csv"
    if out.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    arctic = arctic_example()
    rows.append(_row("arctic_a0007", arctic, "cmu_arctic/awb", "", "pysptk example (CMU ARCTIC, free license)"))
    espeak = shutil.which("espeak-ng")
    if espeak:
        for v, voice in enumerate(VOICES):
            for s, sentence in enumerate(SENTENCES):
                wav = folder / f"espeak_{v}{s}.wav"
                subprocess.run([espeak, "-v", voice, "-w", str(wav), sentence], check=True, capture_output=True)
                rows.append(_row(wav.stem, wav, f"espeak-ng:{voice}", sentence, "synthesized by espeak-ng"))
    tmp = folder / "manifest.csv.tmp"
    manifest.write(rows, tmp)
    tmp.replace(out)
    return out


def _row(utt_id: str, path: Path, speaker: str, text: str, source: str) -> dict[str, object]:
    clip = audio.read(path)
    return {
        "id": utt_id,
        "path": str(path.resolve()),
        "sample_rate": clip.sr,
        "duration_s": round(clip.duration, 3),
        "speaker": speaker,
        "text": text,
        "split": "demo",
        "license": "demo only",
        "source": source,
    }
