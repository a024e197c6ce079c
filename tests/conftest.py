"""Shared fixtures. Real audio comes from ../shared/data (CI has it); tests that need it skip with the reason."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

SHARED = Path(os.environ.get("SVBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SPEECH = SHARED / "data" / "speech"
DEMO = SHARED / "data" / "svcodec-demo"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared data folder beside the checkout); not present here")
    return path


@pytest.fixture
def librispeech_manifest(tmp_path: Path):
    """A small manifest of real LibriSpeech clips (train-clean-100, 16 kHz FLAC), shortest first."""

    def make(n: int = 4, max_s: float = 8.0) -> Path:
        root = need(SPEECH / "librispeech")
        table = pd.read_csv(root / "manifest.csv", dtype={"id": str})
        table = table[table.duration_s <= max_s].sort_values("duration_s").head(n).copy()
        table["path"] = [str(root / p) for p in table.path]
        out = tmp_path / "libri.csv"
        table.to_csv(out, index=False)
        return out

    return make


@pytest.fixture(scope="session")
def evs():
    """The EVS reference programs, built once into svbench's cache from ../shared/tools/evs (about 1 minute)."""
    from svbench.cards import get_card
    from svbench.engine import make_codec

    c = make_codec(get_card("codecs", "evs"))
    if c.unavailable_reason():
        tarball = need(SHARED / "tools" / "evs" / "evs-26443-h00.tar.gz")
        script = Path(__file__).resolve().parents[1] / "scripts" / "build_evs.sh"
        subprocess.run(["bash", str(script), str(tarball)], check=True, capture_output=True)
    assert c.unavailable_reason() is None
    return c


DEMO_UTT = "61-70968-0000"


@pytest.fixture(scope="session")
def speech16():
    """A real 4.9 s utterance (LibriSpeech 61-70968-0000, the svcodec-demo reference) at 16 kHz."""
    from svbench import audio

    path = next(need(DEMO / "reference").rglob(f"{DEMO_UTT}.flac"), None)
    if path is None:
        pytest.skip(f"{DEMO_UTT}.flac not in the svcodec-demo references")
    return audio.read(path).samples
