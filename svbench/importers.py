"""Manifests from the standard on-disk layout of each corpus, and from a plain folder of audio."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import soundfile as sf

from svbench import demo, manifest, settings
from svbench.adapters.precomputed import audio_files


def _info(path: Path) -> tuple[int | None, float | None]:
    try:
        info = sf.info(str(path))
        return info.samplerate, round(info.frames / info.samplerate, 3)
    except (sf.LibsndfileError, RuntimeError):
        return None, None  # unreadable files still enter the manifest; the run reports them per utterance


def _track(files: list[Path], what: str) -> Iterator[Path]:
    """A progress bar with ETA on stderr: reading headers of a whole corpus takes a while."""
    from rich.console import Console
    from rich.progress import track

    yield from track(files, description=f"reading {what}", console=Console(stderr=True), transient=True)


def _row(root: Path, path: Path, utt_id: str, speaker: str, text: str, split: str) -> dict[str, object]:
    sr, dur = _info(path)
    return {"id": utt_id, "path": path.relative_to(root).as_posix(), "sample_rate": sr, "duration_s": dur,
            "speaker": speaker, "text": text, "split": split}


def _write(rows: list[dict[str, object]], root: Path, out: Path, absolute: bool = False) -> int:
    """Paths are written relative to the manifest's folder, so the manifest can move with the corpus;
    symbolic links are kept as they are (a corpus linked into a data folder moves with its link), or
    absolute with ``absolute``."""
    if not rows:
        raise FileNotFoundError(f"{root}: no audio found in the expected layout")
    base = Path(os.path.abspath(out)).parent
    for row in rows:
        target = os.path.abspath(root / str(row["path"]))
        row["path"] = target if absolute else os.path.relpath(target, base)
    manifest.write(rows, out)
    return len(rows)


def _split_of(root: Path, path: Path) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 2 else ""  # <split>/<speaker>/... ; no split folder: ""


def _transcripts(files: Iterable[Path]) -> dict[str, str]:
    """Kaldi-style transcript files: one "<utterance id> <text>" per line."""
    texts: dict[str, str] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if " " in line:
                utt, text = line.split(" ", 1)
                texts[utt] = text.strip()
    return texts


def librispeech(root: Path, out: Path, absolute: bool = False) -> int:
    """ROOT/<split>/<speaker>/<chapter>/<spk>-<chap>-<n>.flac, transcripts in <spk>-<chap>.trans.txt.

    Lenient: any depth, .flac or .wav, transcripts optional (then ``text`` is empty).
    """
    texts = _transcripts(root.rglob("*.trans.txt"))
    files = [f for f in audio_files(root) if f.suffix.lower() in (".flac", ".wav")]
    rows = [_row(root, f, f.stem, f.stem.split("-")[0], texts.get(f.stem, ""), _split_of(root, f))
            for f in _track(files, "LibriSpeech")]
    return _write(rows, root, out, absolute)


def libritts(root: Path, out: Path, absolute: bool = False) -> int:
    """ROOT/<split>/<speaker>/<chapter>/<id>.wav with <id>.normalized.txt (or .original.txt) beside each."""
    rows = []
    for wav in _track(sorted(root.rglob("*.wav")), "LibriTTS"):
        text = ""
        for suffix in (".normalized.txt", ".original.txt"):
            txt = wav.with_name(wav.stem + suffix)
            if txt.is_file():
                text = txt.read_text().strip()
                break
        rows.append(_row(root, wav, wav.stem, wav.stem.split("_")[0], text, _split_of(root, wav)))
    return _write(rows, root, out, absolute)


def ljspeech(root: Path, out: Path, absolute: bool = False) -> int:
    """ROOT/metadata.csv (id|text|normalized text) and ROOT/wavs/<id>.wav; one speaker."""
    meta = root / "metadata.csv"
    texts: dict[str, str] = {}
    if meta.is_file():
        for line in meta.read_text(encoding="utf-8").splitlines():
            parts = line.split("|")
            if len(parts) >= 2:
                texts[parts[0]] = parts[-1]
    rows = [_row(root, wav, wav.stem, "LJ", texts.get(wav.stem, ""), "")
            for wav in _track(sorted((root / "wavs").glob("*.wav")), "LJSpeech")]
    return _write(rows, root, out, absolute)


def aishell1(root: Path, out: Path, absolute: bool = False) -> int:
    """ROOT/wav/<split>/<speaker>/<id>.wav (or ROOT/data_aishell/...) and transcript/aishell_transcript_v0.8.txt."""
    # AISHELL-1 separates words with spaces; Mandarin text is written without them
    texts = {utt: text.replace(" ", "") for utt, text in _transcripts(root.rglob("aishell_transcript*.txt")).items()}
    rows = []
    for wav in _track(sorted(root.rglob("*.wav")), "AISHELL-1"):
        parts = wav.relative_to(root).parts
        split = parts[-3] if len(parts) >= 3 else ""
        rows.append(_row(root, wav, wav.stem, parts[-2] if len(parts) >= 2 else "", texts.get(wav.stem, ""), split))
    return _write(rows, root, out, absolute)


def folder(root: Path, out: Path, absolute: bool = False) -> int:
    """Any folder of audio: id = file name without extension (plus its folder if names repeat)."""
    files = audio_files(root)
    folders_of: dict[str, set[Path]] = {}
    for f in files:
        folders_of.setdefault(f.stem, set()).add(f.parent)
    rows, seen = [], set()
    for f in _track(files, str(root)):
        unique = len(folders_of[f.stem]) == 1
        utt_id = f.stem if unique else f.relative_to(root).with_suffix("").as_posix()
        if utt_id in seen:  # one recording in two formats (x.flac and x.wav): keep the first (sorted)
            continue
        seen.add(utt_id)
        rows.append(_row(root, f, utt_id, "", "", ""))
    return _write(rows, root, out, absolute)


IMPORTERS: dict[str, Callable[..., int]] = {
    "librispeech": librispeech,
    "libritts": libritts,
    "ljspeech": ljspeech,
    "aishell1": aishell1,
    "dir": folder,
}


def _manifests_under(folder_path: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder_path.glob("*/manifest.csv")):
        yield path.parent.name, path
    for path in sorted(folder_path.glob("*.csv")):
        yield path.stem, path


def known_datasets() -> dict[str, Path]:
    """The demo set, ./datasets/*, and every folder listed in $SVBENCH_DATA (os.pathsep separated)."""
    found = {demo.NAME: demo.build()}
    places = [Path.cwd() / "datasets"] + settings.data_folders()
    for place in places:
        if place.is_dir():
            for name, path in _manifests_under(place):
                found.setdefault(name, path)
    return found
