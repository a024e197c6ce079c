"""Manifests: loading the shared corpora as they are, and importing each corpus layout."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest
import soundfile as sf

from svbench import importers, manifest
from svbench.manifest import ManifestError

from .conftest import DEMO, SPEECH, need


@pytest.mark.parametrize("corpus", ["librispeech", "fsdd", "ljspeech", "vctk", "cmu_arctic", "aishell1"])
def test_shared_manifests_load_directly(corpus):
    path = need(SPEECH / corpus / "manifest.csv")
    loaded = manifest.load(path)
    table = pd.read_csv(path)
    assert len(loaded.utterances) == len(table) and not loaded.problems
    first = loaded.utterances[0]
    assert first.path.is_file() and first.path == path.parent / table.path.iloc[0]


def test_duplicate_ids_and_empty_rows_are_left_out_with_their_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,path\na,x.wav\nb,y.wav\na,z.wav\n,w.wav\n")
    loaded = manifest.load(path)
    assert [u.id for u in loaded.utterances] == ["a", "b"]
    assert ("m.csv line 4", "duplicate id 'a' (first on line 2); row left out") in loaded.problems
    assert ("m.csv line 5", "empty id or path; row left out") in loaded.problems


def test_unreadable_manifest_names_the_file(tmp_path):
    with pytest.raises(ManifestError, match="nothere.csv: manifest not found"):
        manifest.load(tmp_path / "nothere.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ManifestError, match="empty.csv: not a readable CSV"):
        manifest.load(empty)


def test_absolute_and_relative_paths(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "m.csv").write_text(f"id,path\nrel,audio/a.wav\nabs,{tmp_path / 'b.wav'}\n")
    loaded = manifest.load(sub / "m.csv")
    assert loaded.utterances[0].path == sub / "audio" / "a.wav"
    assert loaded.utterances[1].path == tmp_path / "b.wav"


def check_import(importer, root, out, n, **first):
    assert importer(root, out) == n
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    loaded = manifest.load(out)
    assert len(loaded.utterances) == n and all(u.path.is_file() for u in loaded.utterances)
    row = table.set_index("id").loc[first.pop("id")]
    for key, value in first.items():
        assert row[key] == value, key
    return table


def test_librispeech_layout_with_transcripts(tmp_path):
    src = need(SPEECH / "librispeech" / "train-clean-100")
    flacs = sorted(src.rglob("*.flac"))[:3]
    root = tmp_path / "LibriSpeech"
    for i, f in enumerate(flacs):
        spk, chap = f.stem.split("-")[:2]
        dest = root / "dev-clean" / spk / chap
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest / f.name)
        (dest / f"{spk}-{chap}.trans.txt").write_text(f"{f.stem} WORDS OF UTTERANCE {i}\n")
    info = sf.info(str(flacs[0]))
    check_import(importers.librispeech, root, tmp_path / "ls.csv", 3, id=flacs[0].stem, split="dev-clean",
                 speaker=flacs[0].stem.split("-")[0], text="WORDS OF UTTERANCE 0", sample_rate=str(info.samplerate))


def test_librispeech_importer_reads_the_shared_copy(tmp_path):
    root = need(SPEECH / "librispeech")
    table = check_import(importers.librispeech, root, tmp_path / "ls.csv", len(pd.read_csv(root / "manifest.csv")),
                         id="1688-142285-0000", split="test-other", speaker="1688")
    assert set(table.split) >= {"train-clean-100", "test-other"}


def test_libritts_layout(tmp_path):
    src = need(SPEECH / "librispeech" / "train-clean-100")
    flac = sorted(src.rglob("*.flac"))[0]
    samples, sr = sf.read(str(flac))
    utt = "84_121123_000007_000001"
    dest = tmp_path / "LibriTTS" / "test-clean" / "84" / "121123"
    dest.mkdir(parents=True)
    sf.write(str(dest / f"{utt}.wav"), samples, sr)
    (dest / f"{utt}.normalized.txt").write_text("Hello there.")
    check_import(importers.libritts, tmp_path / "LibriTTS", tmp_path / "tts.csv", 1, id=utt, speaker="84",
                 split="test-clean", text="Hello there.")


def test_ljspeech_layout(tmp_path):
    src = need(SPEECH / "ljspeech")
    table = pd.read_csv(src / "manifest.csv").head(3)
    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    lines = []
    for row in table.itertuples():
        shutil.copy(src / row.path, root / "wavs" / f"{row.id}.wav")
        lines.append(f"{row.id}|{row.text.upper()}|{row.text}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    check_import(importers.ljspeech, root, tmp_path / "lj.csv", 3, id=table.id.iloc[1], text=table.text.iloc[1],
                 speaker="LJ", sample_rate="22050")


def test_aishell1_layout_with_mandarin_transcript(tmp_path):
    src = need(SPEECH / "aishell1")
    row = pd.read_csv(src / "manifest.csv").iloc[0]
    root = tmp_path / "data_aishell"
    dest = root / "wav" / "test" / row.speaker
    dest.mkdir(parents=True)
    shutil.copy(src / row.path, dest / f"{row.id}.wav")
    (root / "transcript").mkdir()
    spaced = " ".join(row.text)  # AISHELL-1 transcripts separate words by spaces
    (root / "transcript" / "aishell_transcript_v0.8.txt").write_text(f"{row.id} {spaced}\n", encoding="utf-8")
    check_import(importers.aishell1, root, tmp_path / "ai.csv", 1, id=row.id, text=row.text, split="test",
                 speaker=row.speaker)


def test_plain_folder_keeps_one_of_two_formats_and_ids_from_names(tmp_path):
    root = need(DEMO / "reference" / "org")
    table = check_import(importers.folder, root, tmp_path / "dir.csv", 10, id="61-70968-0000")
    assert table.set_index("id").loc["61-70968-0000", "path"].endswith(".flac")  # .flac and .wav of one clip


def test_cli_data_import(tmp_path):
    root = need(SPEECH / "cmu_arctic")
    out = tmp_path / "arctic.csv"
    done = subprocess.run([sys.executable, "-m", "svbench", "data", "import", "dir", str(root), "-o", str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert len(manifest.load(out).utterances) == len(pd.read_csv(root / "manifest.csv"))
