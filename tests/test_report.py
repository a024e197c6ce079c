"""Reports from a real store: two real `svbench run`s (Opus and Codec 2 on LibriSpeech clips), then the tidy
frame, the aggregation and the renderers, each checked against the store's own per-utterance rows."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from svbench.cli import main
from svbench.report import tidy

from .conftest import SPEECH, need

N_CLIPS = 3
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Workspace with two runs: opus 6k,12k and codec2 1.2k,3.2k, metrics pesq, stoi, f0rmse, over 3 LibriSpeech
    clips, a 0.3 s excerpt of one (STOI is not defined under 0.4 s: a real undefined value, PESQ and F0RMSE
    still defined) and a silent file (a real failed unit: the reference is refused as silent)."""
    root = need(SPEECH / "librispeech")
    tmp = tmp_path_factory.mktemp("report")
    table = pd.read_csv(root / "manifest.csv", dtype={"id": str})
    table = table[table.duration_s <= 8].sort_values("duration_s").head(N_CLIPS)[["id", "path"]].copy()
    table["path"] = [str(root / p) for p in table.path]
    speech, sr = sf.read(table.path.iloc[0])
    sf.write(tmp / "short.wav", speech[sr // 2: sr // 2 + int(0.3 * sr)], sr)
    sf.write(tmp / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    table.loc[len(table)] = ["short-0000", str(tmp / "short.wav")]
    table.loc[len(table)] = ["silent-0000", str(tmp / "silent.wav")]
    table.to_csv(tmp / "librispeech.csv", index=False)
    ws = tmp / "ws"
    for codec, rates in (("opus", "6k,12k"), ("codec2", "1.2k,3.2k")):
        code = main(["run", "--codec", codec, "--bitrate", rates, "--dataset", str(tmp / "librispeech.csv"),
                     "--metrics", "pesq,stoi,f0rmse", "--workers", "1", "--quiet", "--workspace", str(ws)])
        assert code == 1  # the silent file fails: exit 1 tells the truth
    return ws / "svbench.sqlite"


def _sql(store: Path, query: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(query).fetchall()


# ---------------------------------------------------------------- tidy frame


def test_tidy_has_one_row_per_score_and_one_per_failed_unit(store):
    frame = tidy.load(store)
    assert list(frame.columns) == list(tidy.COLUMNS)
    n_scores = _sql(store, "SELECT COUNT(*) FROM scores")[0][0]
    bare = _sql(store, "SELECT COUNT(*) FROM units u WHERE NOT EXISTS (SELECT 1 FROM scores s WHERE "
                "s.run_id = u.run_id AND s.utt_id = u.utt_id AND s.codec = u.codec AND s.bitrate = u.bitrate)")[0][0]
    assert bare == 4  # the silent file at each of the 4 operating points
    assert len(frame) == n_scores + bare
    failed = frame[frame.status == "error"]
    assert len(failed) == 4 and set(failed.utt_id) == {"silent-0000"}
    assert failed.metric.isna().all() and failed.value.isna().all()
    assert (failed.stage == "reference").all() and failed.error.str.contains("silent").all()
    undefined = frame[frame.value.isna() & frame.metric.notna()]
    assert set(undefined.utt_id) == {"short-0000"} and set(undefined.metric) == {"stoi"} and len(undefined) == 4
    assert undefined.reason.str.startswith("not defined: clip too short").all()


def test_tidy_carries_names_and_card_hashes_from_the_run_config(store):
    frame = tidy.load(store)
    assert set(frame.dataset) == {"librispeech"}
    assert dict(frame.groupby("codec").bitrate.unique().map(sorted)) == {"codec2": ["1.2k", "3.2k"],
                                                                          "opus": ["12k", "6k"]}
    assert set(frame.bps) == {1200, 3200, 6000, 12000}
    pesq_hash = hashlib.sha256((REPO / "metrics" / "pesq.toml").read_bytes()).hexdigest()
    assert set(frame.loc[frame.metric == "pesq", "metric_card"]) == {pesq_hash}
    assert frame.codec_card.notna().all()


def test_tidy_selects_runs_and_refuses_unknown_ones(store):
    ids = [r[0] for r in _sql(store, "SELECT run_id FROM runs")]
    assert len(ids) == 2
    one = tidy.load(store, [ids[0][:8]])  # a unique prefix is enough
    assert set(one.run_id) == {ids[0]}
    with pytest.raises(tidy.ReportError, match="no run with id 'deadbeef'"):
        tidy.load(store, ["deadbeef"])


def test_tidy_never_creates_a_store(tmp_path):
    with pytest.raises(tidy.ReportError, match="no run store"):
        tidy.load(tmp_path / "nothing" / "svbench.sqlite")
    assert not (tmp_path / "nothing").exists()


def test_tidy_values_and_reasons_are_the_stored_ones_exactly(store):
    frame = tidy.load(store).dropna(subset=["metric"])
    got = {(r.run_id, r.utt_id, r.codec, r.bitrate, r.metric, r.key): (r.value, r.reason)
           for r in frame.itertuples()}
    rows = _sql(store, "SELECT run_id, utt_id, codec, bitrate, metric, key, value, reason FROM scores")
    assert len(got) == len(rows)
    for *key, value, reason in rows:
        v, why = got[tuple(key)]
        assert (np.isnan(v) and value is None) or v == value  # the very same double
        assert (pd.isna(why) and reason is None) or why == reason
