"""Already-decoded files (a paper's demo outputs, another tool's run), matched to references by id.

A decoded file belongs to utterance ``ID`` when its name (without extension) is ``ID`` or contains
``ID`` with no letter, digit or hyphen touching it: ``2 260-123286-0000.wav`` and
``svcodec_260-123286-0000.wav`` both match ``260-123286-0000``. If ``--decoded DIR`` holds
sub-folders whose names are bitrates (``0k5``, ``3k``, ``1.2k``), each is one operating point.
"""

from __future__ import annotations

import re
from pathlib import Path

from svbench.bitrate import Bitrate

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff", ".aif", ".au"}


def audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def bitrate_folders(root: Path, given: list[Bitrate]) -> dict[Bitrate | None, Path]:
    """Operating points under ``root``: bitrate-named sub-folders, else ``root`` itself."""
    found: dict[Bitrate | None, Path] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        try:
            found[Bitrate.parse(sub.name)] = sub
        except ValueError:
            continue
    if found:
        return {b: p for b, p in found.items() if not given or b in given}
    return {b: root for b in given} if given else {None: root}


class NoDecodedFile(FileNotFoundError):
    """No decoded file names this utterance (as opposed to several that do)."""


class DecodedIndex:
    """Finds the decoded file of each utterance id inside one folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = audio_files(folder)

    def find(self, utt_id: str) -> Path:
        exact = [p for p in self.files if p.stem == utt_id]
        if len(exact) == 1:
            return exact[0]
        pattern = re.compile(rf"(?<![A-Za-z0-9-]){re.escape(utt_id)}(?![A-Za-z0-9-])")
        hits = exact or [p for p in self.files if pattern.search(p.stem)]
        if not hits:
            raise NoDecodedFile(f"{self.folder}: no decoded file for utterance {utt_id}")
        if len(hits) > 1:
            names = ", ".join(p.name for p in hits[:4])
            raise FileNotFoundError(f"{self.folder}: {len(hits)} decoded files match {utt_id} ({names})")
        return hits[0]
