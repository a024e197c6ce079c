"""Training data: manifests in, 8 kHz float32 clips in memory, seeded random crops out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from svbench import audio
from svbench import manifest as manifest_mod
from svbench.settings import speech_root


def compose(sources: list[str], out: Path, root: Path | None = None, per_speaker: int | None = None,
            limit: int | None = None) -> Path:
    """Write one manifest from corpus folders under the speech root; ``corpus/subdir`` keeps only paths
    under that subfolder (e.g. ``librispeech/test-other``). ``per_speaker`` keeps that many utterances
    per speaker, ``limit`` caps the total (both deterministic: manifest order)."""
    root = root or speech_root()
    frames = []
    for src in sources:
        corpus, _, sub = src.partition("/")
        folder = root / corpus
        if not (folder / "manifest.csv").is_file():
            raise FileNotFoundError(f"training corpus {src!r}: {folder}/manifest.csv not found "
                                    "(set SVBENCH_SPEECH to the folder of speech corpora)")
        table = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
        if sub:
            table = table[table.path.str.startswith(sub.rstrip("/") + "/")]
            if table.empty:
                raise FileNotFoundError(f"training corpus {src!r}: {folder}/manifest.csv lists no files under {sub}/")
        table = table.assign(path=[str(folder / p) for p in table.path], source=corpus)
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    if per_speaker:
        table = table.groupby("speaker", sort=False).head(per_speaker)
    if limit:
        table = table.head(limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    return out


def manifest_hash(path: Path) -> str:
    """sha256 over every utterance id and the bytes of its file (the data, not where it lies on disk)."""
    h = hashlib.sha256()
    for utt in manifest_mod.load(path).utterances:
        h.update(utt.id.encode() + b"\0")
        h.update(hashlib.sha256(utt.path.read_bytes()).digest())
    return h.hexdigest()


def refuse_held_out(path: Path, held_out: Sequence[str]) -> None:
    """Refuse a manifest that lies in, or lists files of, a folder named in ``held_out`` (evaluation-only
    folders, the card's ``[train] held_out``)."""
    m = manifest_mod.load(path)
    for name in held_out:
        bad = [u.path for u in m.utterances if name in str(u.path)] + ([m.path] if name in str(m.path) else [])
        if bad:
            raise ValueError(f"{path}: lists files of the held-out set {name!r} ({bad[0]}); it is for evaluation "
                             "only and must never be used to train or validate a model")


def refuse_overlap(train: Path, valid: Path) -> None:
    """Validation scores mean something only on audio the model never trained on."""
    trained = {u.path.resolve() for u in manifest_mod.load(train).utterances}
    both = [u.path for u in manifest_mod.load(valid).utterances if u.path.resolve() in trained]
    if both:
        raise ValueError(f"{valid}: {len(both)} of its files are also in the training manifest {train} "
                         f"(first: {both[0]}); validate on audio the model never trains on")


def load_clips(path: Path, sr: int, max_seconds: float | None = None, *,
               held_out: Sequence[str]) -> list[np.ndarray]:
    """Every utterance of a manifest as float32 mono at ``sr`` (unreadable or silent files are skipped); a
    manifest of the ``held_out`` folders is refused."""
    refuse_held_out(path, held_out)
    clips = []
    for utt in manifest_mod.load(path).utterances:
        try:
            clip = audio.resample(audio.check(audio.read(utt.path), utt.path), sr).samples
        except audio.AudioError:
            continue
        if max_seconds:
            clip = clip[: int(max_seconds * sr)]
        clips.append(clip)
    if not clips:
        raise ValueError(f"{path}: no usable audio")
    return clips


class Crops:
    """Random fixed-length crops, drawn by a generator seeded from (seed, step, rank): a resumed run
    sees exactly the batches it would have seen. A crop longer than its clip is filled with pieces of
    further clips, never with zeros: digital silence would dominate a log-spectral loss."""

    def __init__(self, clips: list[np.ndarray], length: int, gain_db: tuple[float, float] = (-10.0, 6.0)):
        self.clips, self.length, self.gain_db = clips, length, gain_db
        sizes = np.array([max(len(c), 1) for c in clips], dtype=np.float64)
        self.weights = sizes / sizes.sum()

    def _piece(self, rng: np.random.Generator, need: int) -> np.ndarray:
        for _ in range(5):  # avoid near-silent pieces
            clip = self.clips[rng.choice(len(self.clips), p=self.weights)]
            start = int(rng.integers(0, max(len(clip) - need, 0) + 1))
            piece = clip[start: start + need]
            if audio.rms_dbfs(piece) > -45:
                break
        return piece

    def batch(self, size: int, seed: int, step: int, rank: int = 0) -> np.ndarray:
        rng = np.random.default_rng([seed, step, rank])
        out = np.zeros((size, self.length), dtype=np.float32)
        for i in range(size):
            filled = 0
            while filled < self.length:
                piece = self._piece(rng, self.length - filled)
                out[i, filled: filled + len(piece)] = piece
                filled += len(piece)
            gain = 10 ** (rng.uniform(*self.gain_db) / 20)
            out[i] = np.clip(out[i] * gain, -1.0, 1.0)
        return out
