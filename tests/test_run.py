"""Whole runs: the grid, the store, bad input recorded per utterance, precomputed files, kill and resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from svbench import engine, unit
from svbench.cards import get_card
from svbench.executor import SerialExecutor
from svbench.manifest import ManifestError
from svbench.store import Store

from .conftest import DEMO, SPEECH, need

SVBENCH = [sys.executable, "-m", "svbench"]


def run(spec: engine.RunSpec):
    outcome = engine.execute(spec, SerialExecutor())
    store = Store(outcome.store_path)
    try:
        return outcome, store.frame("units", outcome.run_id), store.frame("scores", outcome.run_id)
    finally:
        store.close()


def test_grid_runs_every_valid_pair_and_skips_the_rest(librispeech_manifest, tmp_path):
    manifest = librispeech_manifest(2)
    spec = engine.RunSpec(str(manifest), ("opus", "codec2"), ("1.2k", "3.2k", "6k"), ("pesq", "stoi"),
                          workspace=str(tmp_path / "ws"))
    outcome, units, scores = run(spec)
    pairs = set(zip(units.codec, units.bitrate, strict=True))
    # opus takes any rate from 0.5k; codec2 has 1.2k and 3.2k modes but no 6k one
    assert pairs == {("opus", "1.2k"), ("opus", "3.2k"), ("opus", "6k"), ("codec2", "1.2k"), ("codec2", "3.2k")}
    assert ("grid codec2@6k", "skipped: codec2 has no 6k mode (its modes: 0.7k, 1.2k, 1.3k, 1.4k, 1.6k, 2.4k, 3.2k)"
            ) in outcome.notices
    assert (units.status == "ok").all() and len(units) == 10
    assert set(scores.key) == {"pesq_nb", "stoi"} and scores.value.notna().all()
    # measured beside nominal: codec2 is exact to a padded frame, opus hard-CBR to a packet
    c2 = units[(units.codec == "codec2") & (units.bitrate == "3.2k")]
    assert ((c2.measured_bps - 3200).abs() < 50).all()
    # better bitrate, better PESQ: codec2 3.2k over 1.2k on average (Codec 2's own listening results)
    pesq = scores[scores.key == "pesq_nb"].merge(units, on=["utt_id", "codec", "bitrate"])
    by = pesq[pesq.codec == "codec2"].groupby("bitrate").value.mean()
    assert by["3.2k"] > by["1.2k"]


def write_clip(path: Path, samples: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sr, subtype=subtype)
    return path


@pytest.fixture
def bad_dataset(tmp_path):
    """A manifest mixing good real speech with each kind of bad input users have."""
    root = need(SPEECH / "librispeech")
    table = pd.read_csv(root / "manifest.csv")
    good = root / table[table.duration_s.between(3, 5)].path.iloc[0]
    speech, sr = sf.read(str(good), dtype="float32")
    d = tmp_path / "data set"  # a space in every path
    truncated = d / "truncated.flac"
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(good.read_bytes()[:300])
    rows = [
        ("good", str(good)),
        ("missing", str(d / "not-there.wav")),
        ("truncated", str(truncated)),
        ("empty", str(write_clip(d / "empty.wav", np.zeros(0, np.float32), sr))),
        ("silent", str(write_clip(d / "silent.wav", np.zeros(sr * 2, np.float32), sr))),
        ("nan", str(write_clip(d / "nan.wav", np.where(np.arange(len(speech)) == 500, np.nan, speech), sr, "FLOAT"))),
        ("short", str(write_clip(d / "short.wav", speech[sr : sr + sr // 10], sr))),  # 0.1 s of speech
        ("stereo", str(write_clip(d / "stereo.wav", np.stack([speech, speech], axis=1), sr))),
        ("odd-rate", str(write_clip(d / "odd.wav", speech, 11025))),  # played slower, still speech
        ("ünïcode", str(write_clip(d / "ñame with spaces é.wav", speech, sr))),
        ("good", str(good)),  # duplicate id
    ]
    manifest = tmp_path / "bad.csv"
    pd.DataFrame(rows, columns=["id", "path"]).to_csv(manifest, index=False)
    return manifest


def test_bad_input_is_an_error_row_and_the_run_goes_on(bad_dataset, tmp_path):
    spec = engine.RunSpec(str(bad_dataset), ("codec2",), ("3.2k",), ("pesq", "stoi"), workspace=str(tmp_path / "ws"))
    outcome, units, scores = run(spec)
    by_id = units.set_index("utt_id")
    assert len(units) == 10  # the duplicate row is left out with a notice
    assert any("duplicate id 'good'" in reason for _, reason in outcome.notices)
    expected_errors = {
        "missing": "not-there.wav: file not found",
        "truncated": "truncated.flac",
        "empty": "empty.wav",
        "silent": "silent.wav: silent",
        "nan": "nan.wav: 1 NaN/inf samples",
    }
    for utt, text in expected_errors.items():
        assert by_id.loc[utt, "status"] == "error" and by_id.loc[utt, "stage"] == "reference"
        assert text in by_id.loc[utt, "error"]
    for utt in ("good", "stereo", "odd-rate", "ünïcode", "short"):
        assert by_id.loc[utt, "status"] == "ok", by_id.loc[utt, "error"]
    assert "mixed 2 channels down to mono" in by_id.loc["stereo", "notes"]
    assert "reference resampled 11025->8000 Hz" in by_id.loc["odd-rate", "notes"]
    short = scores[scores.utt_id == "short"].set_index("metric")
    assert short.loc["pesq", "value"] is None or np.isnan(short.loc["pesq", "value"])
    assert short.loc["pesq", "reason"].startswith("not defined: clip too short")
    good = scores[scores.utt_id == "good"]
    assert good.value.notna().all()


def test_cli_exit_code_and_json_say_that_utterances_failed(bad_dataset, tmp_path):
    done = subprocess.run([*SVBENCH, "run", "--codec", "codec2", "--bitrate", "3.2k", "--dataset", str(bad_dataset),
                           "--workspace", str(tmp_path / "ws"), "--workers", "1", "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    # 5 unreadable references fail their unit; PESQ and STOI are undefined on the 0.1 s clip
    assert report["counts"]["failed_units"] == len(report["failed_units"]) == 5
    assert report["counts"]["undefined_values"] == len(report["undefined_values"]) == 2
    assert {v["metric"] for v in report["undefined_values"]} == {"pesq", "stoi"}
    assert report["counts"]["manifest_rows_left_out"] == 1  # the duplicate id
    assert all(u["reason"] and u["stage"] == "reference" for u in report["failed_units"])
    assert report["rows"]["units"] == 10


def test_manifest_without_path_column_stops_with_the_file_named(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("id,file\na,b.wav\n")
    with pytest.raises(ManifestError, match=r"m.csv: missing column\(s\) path"):
        engine.execute(engine.RunSpec(str(bad), ("codec2",), ("3.2k",), workspace=str(tmp_path)), SerialExecutor())
    done = subprocess.run([*SVBENCH, "run", "--dataset", str(bad), "--workspace", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "missing column(s) path" in done.stderr


def test_codec_program_failing_is_an_error_row(librispeech_manifest, tmp_path, monkeypatch):
    """A card that makes ffmpeg refuse its arguments (quality 99): ffmpeg exits non-zero, per utterance."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg program")
    manifest = librispeech_manifest(2)
    (tmp_path / "codecs").mkdir()
    (tmp_path / "codecs" / "speex-bad.toml").write_text(
        'name = "speex-bad"\nadapter = "speex"\nsample_rate = 8000\n[bitrates]\nlist = ["8k"]\n'
        '[params.quality]\n"8k" = 99\n')
    monkeypatch.chdir(tmp_path)  # cards in ./codecs are found first
    _, units, _ = run(engine.RunSpec(str(manifest), ("speex-bad",), (), ("stoi",), workspace=str(tmp_path / "ws")))
    assert (units.status == "error").all() and (units.stage == "codec").all()
    assert units.error.str.contains("ffmpeg exited with code").all()


def test_codec_not_installed_is_refused_before_any_work(librispeech_manifest, tmp_path, monkeypatch):
    manifest = librispeech_manifest(2)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg
    with pytest.raises(engine.UsageError, match=r"codec speex is unavailable.*program\(s\) not found: ffmpeg"):
        run(engine.RunSpec(str(manifest), ("speex",), ("8k",), ("stoi",), workspace=str(tmp_path / "ws")))
    assert not (tmp_path / "ws" / "svbench.sqlite").exists()


def demo_manifest(tmp_path: Path) -> Path:
    root = need(DEMO / "reference" / "org")
    rows = [(p.stem, str(p)) for p in sorted(root.rglob("*.flac"))]
    out = tmp_path / "demo.csv"
    pd.DataFrame(rows, columns=["id", "path"]).to_csv(out, index=False)
    return out


def test_precomputed_demo_outputs_match_by_id_inside_names_with_spaces(tmp_path):
    decoded = need(DEMO / "decoded" / "3 Codec2")
    spec = engine.RunSpec(str(demo_manifest(tmp_path)), ("precomputed",), ("1.2k", "3.2k"), ("pesq", "stoi"),
                          decoded=(str(decoded),), skip_missing=True, label_from=r"^\d+ (.+)$",
                          workspace=str(tmp_path / "ws"))
    outcome, units, scores = run(spec)
    # the demo page has Codec 2 outputs for 5 of the 10 references, at each bitrate folder (1k2, 3k2)
    assert len(units) == 10 and (units.status == "ok").all()
    assert set(units.codec) == {"Codec2"} and set(units.bitrate) == {"1.2k", "3.2k"}
    assert all(Path(p).name.endswith(f"{u}.wav") for p, u in zip(units.deg_path, units.utt_id, strict=True))
    assert (units.eval_sr == 8000).all()  # 8 kHz decoded against 16 kHz references: compared at 8 kHz
    assert set(scores.key) == {"pesq_nb", "stoi"}
    assert units.delay_ms.between(0, 60).all()  # the demo's codec delays are 0 to 60 ms
    skips = [r for _, r in outcome.notices if r.startswith("skipped 5 utterance(s) with no decoded file")]
    assert len(skips) == 2  # one notice per operating point, naming the 5 references without output


def test_cropped_decoded_files_are_refused_unless_asked(tmp_path):
    source = need(DEMO / "decoded" / "3 Codec2" / "3k2")
    folder = tmp_path / "cropped"
    folder.mkdir()
    for wav in sorted(source.glob("*.wav"))[:2]:
        samples, sr = sf.read(str(wav), dtype="float32")
        write_clip(folder / wav.name, samples[: int(0.4 * len(samples))], sr)  # a 40 % excerpt
    manifest = demo_manifest(tmp_path)
    base = dict(dataset=str(manifest), codecs=("precomputed",), metrics=("stoi",), decoded=(str(folder),),
                skip_missing=True, workspace=str(tmp_path / "ws"))
    _, refused, _ = run(engine.RunSpec(**base))
    assert len(refused) == 2 and (refused.status == "error").all()
    assert refused.error.str.contains("much shorter than its reference").all()
    assert refused.error.str.contains("--crop-reference").all()
    _, allowed, scores = run(engine.RunSpec(**base, crop_reference=True))
    assert (allowed.status == "ok").all() and scores.value.notna().all()


def test_adding_a_metric_later_reuses_the_decoded_cache(librispeech_manifest, tmp_path):
    manifest = librispeech_manifest(2)
    ws = str(tmp_path / "ws")
    _, first, _ = run(engine.RunSpec(str(manifest), ("codec2",), ("1.3k",), ("stoi",), workspace=ws))
    outcome, second, _ = run(engine.RunSpec(str(manifest), ("codec2",), ("1.3k",), ("stoi", "pesq"), workspace=ws))
    assert not outcome.resumed  # another metric set is another run ...
    assert (first.cached == 0).all() and (second.cached == 1).all()  # ... that does not re-encode


def store_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(str(db), timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing_or_losing_rows(librispeech_manifest, tmp_path):
    manifest = librispeech_manifest(12, max_s=6.0)
    ws = tmp_path / "ws"
    args = [*SVBENCH, "run", "--codec", "codec2", "--bitrate", "1.3k,3.2k", "--dataset", str(manifest),
            "--metrics", "pesq,stoi", "--workspace", str(ws), "--workers", "2", "--json"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while store_count(ws / "svbench.sqlite") < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers included: like a power cut
    proc.wait()
    before = store_count(ws / "svbench.sqlite")
    assert 4 <= before < 24, "the kill must land mid-run"
    with sqlite3.connect(str(ws / "svbench.sqlite")) as con:
        kept = con.execute("SELECT * FROM units ORDER BY utt_id, bitrate").fetchall()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["resumed"] and report["already_done"] == before and report["computed"] == 24 - before
    with sqlite3.connect(str(ws / "svbench.sqlite")) as con:
        assert con.execute("SELECT COUNT(*) FROM units").fetchone()[0] == 24
        assert con.execute("SELECT COUNT(DISTINCT utt_id || bitrate) FROM units").fetchone()[0] == 24
        assert con.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 48  # pesq_nb + stoi each
        after = {r[:4]: r for r in con.execute("SELECT * FROM units")}
    assert all(after[r[:4]] == r for r in kept)  # rows stored before the kill are untouched


def test_several_decoded_folders_in_one_run_make_one_table(tmp_path):
    folders = [need(DEMO / "decoded" / name) for name in ("1 SVCODEC", "3 Codec2", "5 Opus")]
    manifest = demo_manifest(tmp_path)
    decoded = [arg for f in folders for arg in ("--decoded", str(f))]
    done = subprocess.run([*SVBENCH, "run", "--codec", "precomputed", *decoded, "--label-from", r"^\d+ (.+)$",
                           "--bitrate", "1.2k,4k", "--dataset", str(manifest), "--metrics", "stoi", "--skip-missing",
                           "--workspace", str(tmp_path / "ws"), "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    rows = {(r["codec"], r["bitrate"]): r for r in json.loads(done.stdout)["summary"]}
    # the demo page has SVCODEC at 4k, Codec 2 at 1.2k, Opus at 1.2k and 4k, each for 5 utterances
    assert set(rows) == {("SVCODEC", "4k"), ("Codec2", "1.2k"), ("Opus", "1.2k"), ("Opus", "4k")}
    assert all(r["ok"] == 5 for r in rows.values())


def test_every_run_records_what_defines_its_numbers(librispeech_manifest, tmp_path):
    outcome, _, _ = run(engine.RunSpec(str(librispeech_manifest(1)), ("codec2",), ("3.2k",), ("pesq",),
                                       workspace=str(tmp_path / "ws")))
    store = Store(outcome.store_path)
    try:
        row = store.frame("runs", outcome.run_id).iloc[0]
    finally:
        store.close()
    config, env = json.loads(row.config), json.loads(row.environment)
    assert config["codec_cards"]["codec2"].startswith(get_card("codecs", "codec2").sha256)  # + adapter version
    assert config["metric_definitions"]["pesq"]["params"]["mode"] == "auto"
    assert env["versions"]["pesq"] and env["versions"]["pycodec2"] and env["python"]


def test_an_unforeseen_exception_is_an_internal_error_row(librispeech_manifest, tmp_path, monkeypatch):
    """No real library fails on demand, so a stand-in for the decoding step raises (a test double, here only)."""
    def broken(*_args):
        raise ZeroDivisionError("library bug")

    monkeypatch.setattr(unit, "_decoded", broken)
    _, units, _ = run(engine.RunSpec(str(librispeech_manifest(2)), ("codec2",), ("3.2k",), ("stoi",),
                                     workspace=str(tmp_path / "ws")))
    assert len(units) == 2 and (units.stage == "internal").all()
    assert units.error.str.contains("ZeroDivisionError: library bug").all()


def test_card_with_an_unknown_placeholder_is_a_codec_error_row(librispeech_manifest, tmp_path, monkeypatch):
    (tmp_path / "codecs").mkdir()
    (tmp_path / "codecs" / "typo.toml").write_text(
        'name = "typo"\nadapter = "command"\nsample_rate = 8000\n[bitrates]\nlist = ["3.2k"]\n'
        '[params]\nencode = ["c2enc", "3200", "{inptu}", "{bitstream}"]\n'
        'decode = ["c2dec", "3200", "{bitstream}", "{output}"]\n')
    monkeypatch.chdir(tmp_path)
    _, units, _ = run(engine.RunSpec(str(librispeech_manifest(1)), ("typo",), (), ("stoi",),
                                     workspace=str(tmp_path / "ws")))
    assert units.stage.iloc[0] == "codec" and "unknown placeholder 'inptu'" in units.error.iloc[0]
