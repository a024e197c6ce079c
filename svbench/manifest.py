"""Dataset manifests: CSV with at least ``id,path``; ``path`` relative to the manifest's folder or absolute.

Optional columns: sample_rate, duration_s, speaker, text, language, split, license, source.
``language`` is a code such as ``en`` or ``zh`` (metrics that read the transcript check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REQUIRED = ("id", "path")
OPTIONAL = ("sample_rate", "duration_s", "speaker", "text", "language", "split", "license", "source")


class ManifestError(Exception):
    """A manifest that cannot be used at all (unreadable, columns missing)."""


@dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    speaker: str = ""
    text: str = ""
    language: str = ""  # e.g. "en", "zh"; empty when the manifest has no language column


@dataclass
class Manifest:
    path: Path
    utterances: list[Utterance]
    problems: list[tuple[str, str]]  # (scope, reason) for rows that were left out


def load(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not a readable CSV manifest ({err})") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; a manifest needs at least 'id,path' "
            f"(found: {', '.join(table.columns) or 'no header'})"
        )
    utterances: list[Utterance] = []
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        utt_id, rel = row["id"].strip(), row["path"].strip()
        scope = f"{path.name} line {line}"
        if not utt_id or not rel:
            problems.append((scope, "empty id or path; row left out"))
            continue
        if utt_id in seen:
            problems.append((scope, f"duplicate id {utt_id!r} (first on line {seen[utt_id]}); row left out"))
            continue
        seen[utt_id] = line
        audio_path = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        utterances.append(Utterance(utt_id, audio_path, row.get("speaker", ""), row.get("text", ""),
                                    row.get("language", "").strip()))
    return Manifest(path, utterances, problems)


def write(rows: list[dict[str, object]], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    columns = [c for c in (*REQUIRED, *OPTIONAL) if c in frame.columns]
    frame[columns].to_csv(out, index=False)
    return out
