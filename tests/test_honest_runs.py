"""Runs that tell the truth: exit codes, retries, concurrent and interrupted runs, quiet output, names.

Every test drives the real command (``svbench.cli.main`` in process, or ``python -m svbench`` as a real
process where signals, concurrency or the process's own stderr are what is tested) on real recordings.
"""

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

import pandas as pd
import pytest

from svbench.cli import main

from .conftest import SPEECH, need

SVBENCH = [sys.executable, "-m", "svbench"]


def units(ws: Path) -> pd.DataFrame:
    with sqlite3.connect(str(ws / "svbench.sqlite")) as con:
        return pd.read_sql_query("SELECT * FROM units", con)


def scores(ws: Path) -> pd.DataFrame:
    with sqlite3.connect(str(ws / "svbench.sqlite")) as con:
        return pd.read_sql_query("SELECT utt_id, codec, bitrate, key, value FROM scores", con)


def test_a_grid_with_no_valid_pair_is_a_usage_error(librispeech_manifest, tmp_path, capsys):
    code = main(["run", "--codec", "codec2", "--bitrate", "5k", "--dataset", str(librispeech_manifest(1)),
                 "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == 2 and "nothing to run" in err and "codec2 has no 5k mode" in err
    assert not (tmp_path / "ws").exists()


def test_an_unavailable_codec_is_refused_before_any_work(librispeech_manifest, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # EVS is looked for in ~/.cache/svbench/evs: not built there
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["run", "--codec", "evs", "--bitrate", "9.6k", "--dataset", str(librispeech_manifest(1)),
                 "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == 2 and "codec evs is unavailable" in err and "EVS_cod" in err
    assert not (tmp_path / "ws").exists()


def test_a_codec_name_typo_suggests_the_nearest_names(tmp_path, capsys):
    assert main(["run", "--codec", "svcodc", "--workspace", str(tmp_path / "ws")]) == 2
    assert "did you mean svcodec" in capsys.readouterr().err


def test_rows_left_out_of_the_manifest_make_the_run_incomplete(librispeech_manifest, tmp_path, capsys):
    manifest = librispeech_manifest(1)
    table = pd.read_csv(manifest, dtype=str)
    pd.concat([table, table]).to_csv(manifest, index=False)  # the same id twice: the second row is left out
    code = main(["run", "--codec", "codec2", "--bitrate", "3.2k", "--dataset", str(manifest), "--metrics", "stoi",
                 "--workspace", str(tmp_path / "ws"), "--workers", "1", "--quiet"])
    assert code == 1
    assert "duplicate id" in capsys.readouterr().err  # said even with --quiet


def test_an_undefined_metric_is_said_even_with_quiet(librispeech_manifest, tmp_path, capsys):
    import soundfile as sf

    manifest = librispeech_manifest(1)
    table = pd.read_csv(manifest, dtype=str)
    x, sr = sf.read(table.path[0])
    sf.write(tmp_path / "short.wav", x[: sr // 10], sr)  # 0.1 s: too short for PESQ (ITU-T P.862 needs 0.25 s)
    table.loc[1] = table.loc[0]
    table.loc[1, ["id", "path"]] = ["short", str(tmp_path / "short.wav")]
    table.to_csv(manifest, index=False)
    code = main(["run", "--codec", "codec2", "--bitrate", "3.2k", "--dataset", str(manifest), "--metrics", "pesq",
                 "--workspace", str(tmp_path / "ws"), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "undefined: codec2@3.2k short: pesq: not defined: clip too short" in err


def test_failed_units_are_computed_again_on_a_rerun(librispeech_manifest, tmp_path):
    manifest = librispeech_manifest(2)
    table = pd.read_csv(manifest, dtype=str)
    original = table.path[1]
    table.loc[1, "path"] = str(tmp_path / "later.flac")  # missing now, copied in before the re-run
    table.to_csv(manifest, index=False)
    args = ["run", "--codec", "codec2", "--bitrate", "3.2k", "--dataset", str(manifest), "--metrics", "stoi",
            "--workspace", str(tmp_path / "ws"), "--workers", "1", "--quiet"]
    assert main(args) == 1
    assert sorted(units(tmp_path / "ws").status) == ["error", "ok"]
    shutil.copy(original, tmp_path / "later.flac")
    assert main([*args, "--no-retry"]) == 1  # the old behaviour, on request: the stored error stays
    assert main(args) == 0
    stored = units(tmp_path / "ws")
    assert len(stored) == 2 and (stored.status == "ok").all() and stored.error.isna().all()
    assert len(scores(tmp_path / "ws")) == 2  # one STOI value per unit, the failed row's leftovers gone


def test_two_identical_runs_at_once_both_succeed_and_store_each_unit_once(librispeech_manifest, tmp_path):
    manifest = librispeech_manifest(3)
    args = [*SVBENCH, "run", "--codec", "codec2", "--bitrate", "1.2k,3.2k", "--dataset", str(manifest),
            "--metrics", "stoi", "--workspace", str(tmp_path / "ws"), "--workers", "1", "--json"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    reports = [json.loads(out) for out, _ in outs]
    assert sorted(r["computed"] for r in reports) == [0, 6]  # one computed, the other waited and found them
    stored = units(tmp_path / "ws")
    assert len(stored) == 6 and not stored.duplicated(["utt_id", "codec", "bitrate"]).any()


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_leaves_no_worker(librispeech_manifest, tmp_path):
    manifest = librispeech_manifest(12, max_s=6.0)
    ws = tmp_path / "ws"
    args = [*SVBENCH, "run", "--codec", "codec2", "--bitrate", "1.3k,3.2k", "--dataset", str(manifest),
            "--metrics", "pesq,stoi", "--workspace", str(ws), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (ws / "svbench.sqlite").exists():
            try:
                if len(units(ws)) >= 2:
                    break
            except (sqlite3.OperationalError, pd.errors.DatabaseError):
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # to the main process only, as `kill -INT`; Ctrl-C reaches the group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    stored = len(units(ws))
    assert f"interrupted: {stored} of 24 units" in err and "run the same command again to resume" in err
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # nothing left in the run's process group: no orphaned worker
        os.killpg(proc.pid, 0)


def test_a_killed_run_resumed_gives_the_values_of_an_uninterrupted_run(librispeech_manifest, tmp_path):
    """kill -9 mid-run, re-run, and compare every value with one run that was never interrupted, with a
    different number of workers: decoding and scoring depend on the unit alone."""
    manifest = librispeech_manifest(6, max_s=6.0)
    base = ["run", "--grid", "codec2=1.2k", "--grid", "opus=6k", "--dataset", str(manifest),
            "--metrics", "pesq,stoi", "--quiet"]
    ws = tmp_path / "killed"
    proc = subprocess.Popen([*SVBENCH, *base, "--workspace", str(ws), "--workers", "2"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if (ws / "svbench.sqlite").exists() and len(units(ws)) >= 2:
                break
        except (sqlite3.OperationalError, pd.errors.DatabaseError):
            pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main([*base, "--workspace", str(ws), "--workers", "2"]) == 0
    assert main([*base, "--workspace", str(tmp_path / "whole"), "--workers", "1"]) == 0
    key = ["utt_id", "codec", "bitrate", "key"]
    a = scores(ws).sort_values(key).reset_index(drop=True)
    b = scores(tmp_path / "whole").sort_values(key).reset_index(drop=True)
    assert len(a) == 12 * 2 and a[key].equals(b[key])  # 6 clips x (codec2@1.2k, opus@6k) x 2 values
    assert (a.value == b.value).all(), "a resumed run must reproduce an uninterrupted one to the last digit"


def test_datasets_by_name_and_by_folder(tmp_path, monkeypatch):
    speech = need(SPEECH / "cmu_arctic")
    monkeypatch.setenv("SVBENCH_DATA", str(SPEECH))
    for given in ("cmu_arctic", str(speech)):
        assert main(["run", "--codec", "codec2", "--bitrate", "3.2k", "--dataset", given, "--metrics", "stoi",
                     "--workspace", str(tmp_path / "ws"), "--workers", "1", "--quiet"]) == 0
    assert len(units(tmp_path / "ws")) == 6  # both name the same manifest: one run, resumed


def test_an_unknown_dataset_name_lists_the_known_ones(tmp_path, capsys):
    assert main(["run", "--dataset", "no_such_corpus", "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "no_such_corpus" in err and "svbench list datasets" in err


def test_import_writes_paths_that_move_with_the_corpus_through_a_link(tmp_path):
    source = need(SPEECH / "cmu_arctic" / "wav")
    data = tmp_path / "data"
    data.mkdir()
    (data / "arctic").symlink_to(source)  # a corpus linked into a data folder
    out = data / "arctic.csv"
    assert main(["data", "import", "dir", str(data / "arctic"), "-o", str(out)]) == 0
    paths = pd.read_csv(out).path
    assert all(p.startswith("arctic/") for p in paths)  # through the link, not its target
    assert main(["data", "import", "dir", str(data / "arctic"), "-o", str(out), "--absolute"]) == 0
    assert all(Path(p).is_absolute() and (data / "arctic") in Path(p).parents for p in pd.read_csv(out).path)


def test_import_of_a_missing_root_says_it_does_not_exist(tmp_path, capsys):
    assert main(["data", "import", "librispeech", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_version():
    done = subprocess.run([*SVBENCH, "--version"], capture_output=True, text=True, check=True)
    from importlib.metadata import version

    assert done.stdout.strip() == f"svbench {version('svbench')}"


def test_export_of_an_unknown_run_is_a_usage_error_that_creates_nothing(tmp_path):
    assert main(["export", "--workspace", str(tmp_path / "ws")]) == 2
    assert not (tmp_path / "ws").exists()


def test_the_paper_metrics_print_no_library_chatter(tmp_path):
    """pkg_resources' deprecation warning (pyworld, pysptk) and TensorFlow Lite's delegate INFO line are
    silenced where they arise; the run's own output is still there."""
    clip = need(SPEECH / "cmu_arctic" / "wav")
    manifest = tmp_path / "one.csv"
    pd.DataFrame({"id": ["a"], "path": [str(sorted(clip.glob("*.wav"))[0])]}).to_csv(manifest, index=False)
    done = subprocess.run([*SVBENCH, "run", "--codec", "svcodec", "--bitrate", "3k", "--dataset", str(manifest),
                           "--metrics", "paper", "--workspace", str(tmp_path / "ws"), "--workers", "1"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "COLUMNS": "80", "PYTHONWARNINGS": "default"})
    assert done.returncode == 0, done.stderr
    assert "pkg_resources" not in done.stderr and "XNNPACK" not in done.stderr
    assert "codec svcodec: uses the shipped tiny checkpoint" in done.stderr and "sha256" in done.stderr
    assert "means over utterances" in done.stderr
    wide = [line for line in done.stderr.splitlines() if len(line) > 80 and "store:" not in line
            and "checkpoint" not in line]
    assert not wide, wide  # the summary fits an 80-column CI log
    assert "…" not in done.stderr  # and no cell is cut


def test_a_run_says_when_its_labels_mislead(librispeech_manifest, tmp_path, capsys):
    """Opus asked for 1.2k and 3.2k spends the same ~4.7 kbit/s on speech (its VBR floor: RFC 6716 2.1.1):
    the run stores and prints the detectors' notices after its table."""
    code = main(["run", "--grid", "opus=1.2k,3.2k", "--dataset", str(librispeech_manifest(2)), "--metrics", "stoi",
                 "--workspace", str(tmp_path / "ws"), "--workers", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    said = " | ".join(f"{n['scope']}: {n['reason']}" for n in report["suspicious"])
    assert "opus@1.2k: measured" in said and "above the nominal 1.2 kbit/s" in said
    assert "opus@1.2k/3.2k" in said
    with sqlite3.connect(str(tmp_path / "ws" / "svbench.sqlite")) as con:
        stored = [r[0] for r in con.execute("SELECT scope FROM notices")]
    assert "opus@1.2k" in stored
