"""The command line: list, run on the demo set, export."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from svbench.cli import main

SVBENCH = [sys.executable, "-m", "svbench"]


def test_list_codecs_shows_each_card_and_its_state(capsys):
    assert main(["list", "codecs"]) == 0
    out = capsys.readouterr().out
    for name in ("opus", "codec2", "speex", "precomputed"):
        assert name in out


def test_list_codecs_says_how_to_install_a_missing_program(tmp_path):
    done = subprocess.run([*SVBENCH, "list", "codecs"], capture_output=True, text=True, check=False,
                          env={"PATH": str(tmp_path), "COLUMNS": "250", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    speex = next(line for line in done.stdout.splitlines() if "speex" in line)
    assert "unavailable" in speex and "apt-get install ffmpeg" in speex


def test_list_metrics(capsys):
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "pesq" in out and "stoi" in out


def test_unknown_metric_stops_before_any_work(tmp_path, capsys):
    code = main(["run", "--codec", "codec2", "--bitrate", "3.2k", "--metrics", "nosuchmetric",
                 "--workspace", str(tmp_path / "ws")])
    assert code == 2
    assert "no metric card named 'nosuchmetric'" in capsys.readouterr().err
    assert not (tmp_path / "ws" / "svbench.sqlite").exists()


@pytest.mark.slow
def test_default_run_on_the_demo_set_then_export(tmp_path):
    env_cache = {"SVBENCH_CACHE": str(tmp_path / "cache")}
    import os

    env = {**os.environ, **env_cache}
    done = subprocess.run([*SVBENCH, "run", "--codec", "opus", "--bitrate", "6k", "--json", "--workspace",
                           str(tmp_path / "ws")], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert "DEMO" in done.stderr  # the demo set says it is a demo
    report = json.loads(done.stdout)
    assert report["counts"] == {"failed_units": 0, "undefined_values": 0, "manifest_rows_left_out": 0}
    assert report["computed"] >= 1
    row = report["summary"][0]
    assert row["codec"] == "opus" and row["bitrate"] == "6k"
    assert 0.9 * 6 <= row["kbps"] <= 1.1 * 6
    assert 1.0 <= row["pesq_nb"] <= 4.6 and 0 <= row["stoi"] <= 1
    results = pd.read_csv(report["results_csv"])
    assert len(results) == report["computed"]
    done = subprocess.run([*SVBENCH, "export", "--format", "parquet", "--workspace", str(tmp_path / "ws")],
                          capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    exported = pd.read_parquet(tmp_path / "ws" / "runs" / report["run_id"] / "results.parquet")
    assert len(exported) == len(results)


def test_paper_metric_set_expands_to_the_eight_metrics():
    from svbench.cli import _metric_names

    assert _metric_names("paper") == ("pesq", "stoi", "visqol", "dnsmos", "f0rmse", "sarmse", "lsd", "mcd")
    assert _metric_names("stoi,paper") == ("stoi", "pesq", "visqol", "dnsmos", "f0rmse", "sarmse", "lsd", "mcd")
