"""`svbench check` on real stores: a real run (Codec 2 and Opus at 1.2k and 3.2k on 4 LibriSpeech clips,
PESQ and LSD), then stores derived from their values.

Why derived stores: the statistics under test (tolerance, Wilcoxon, Holm) must be shown on a 200-utterance
set with an exactly known change (a consistent 0.05 PESQ drop; one utterance's fluke). No codec change
gives exactly that, and scoring 200 real clips takes minutes, so those stores tile the real per-utterance
values of the real run to 200 utterances and add the change (seeded). Everything else reads real runs.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from svbench.cli import main
from svbench.report import baseline as baseline_mod
from svbench.report import check, detect, tidy
from svbench.store import Store

from .conftest import SPEECH, need

N_CLIPS = 4
SEED = 19


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    """Workspace with one real run: codec2 1.2k,3.2k and opus 1.2k,3.2k on 4 LibriSpeech clips, pesq + lsd."""
    root = need(SPEECH / "librispeech")
    tmp = tmp_path_factory.mktemp("check")
    table = pd.read_csv(root / "manifest.csv", dtype={"id": str})
    table = table.sort_values("duration_s").head(N_CLIPS)[["id", "path"]].copy()
    table["path"] = [str(root / p) for p in table.path]
    table.to_csv(tmp / "libri.csv", index=False)
    code = main(["run", "--grid", "codec2=1.2k,3.2k", "--grid", "opus=1.2k,3.2k", "--dataset", str(tmp / "libri.csv"),
                 "--metrics", "pesq,lsd", "--workers", "2", "--quiet", "--workspace", str(tmp / "ws")])
    assert code == 0
    return tmp / "ws"


def derived(real: Path, out: Path, n: int, change=None) -> Path:
    """A store whose runs are the real ones with their utterances tiled to ``n`` (ids ``UTT-000``...);
    ``change(codec, bitrate, key, i, value, rng)`` returns the value to store."""
    rng = np.random.default_rng(SEED)
    src = sqlite3.connect(real / "svbench.sqlite")
    runs = src.execute("SELECT * FROM runs").fetchall()
    units = pd.read_sql_query("SELECT * FROM units", src)
    scores = pd.read_sql_query("SELECT * FROM scores", src)
    src.close()
    Store(out / "svbench.sqlite").close()  # the real schema
    db = sqlite3.connect(out / "svbench.sqlite")
    utts = sorted(units.utt_id.unique())
    copies = {u: [(f"{u}-{i:03d}", i) for i in range(n) if utts[i % len(utts)] == u] for u in utts}
    new_units = pd.concat([units[units.utt_id == u].assign(utt_id=new_id) for u in utts for new_id, _ in copies[u]])
    new_scores = pd.concat([scores[scores.utt_id == u].assign(utt_id=new_id, i=i) for u in utts
                            for new_id, i in copies[u]]).sort_values(["i", "codec", "bitrate", "key"], kind="stable")
    if change:
        new_scores["value"] = [change(r.codec, r.bitrate, r.key, r.i, r.value, rng) for r in new_scores.itertuples()]
    with db:
        db.executemany("INSERT INTO runs VALUES (?,?,?,?,?)", runs)
        new_units.to_sql("units", db, if_exists="append", index=False)
        new_scores.drop(columns="i").to_sql("scores", db, if_exists="append", index=False)
    db.close()
    return out


def run_check(ws: Path, baseline: Path, *extra: str) -> int:
    return main(["check", "--baseline", str(baseline), "--workspace", str(ws), *extra])


def make_baseline(ws: Path, path: Path, *extra: str) -> Path:
    assert run_check(ws, path, "--update", *extra) == 0
    return path


def junit_cases(path: Path) -> dict[str, str | None]:
    """testcase 'classname key' -> failure type (None when it passed)."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        failure = case.find("failure")
        out[f"{case.get('classname')} {case.get('name')}"] = None if failure is None else failure.get("type")
    return out


# ---------------------------------------------------------------- statistics


def test_holm_matches_the_textbook_example():
    # Wikipedia, "Holm-Bonferroni method", example: p = 0.01, 0.04, 0.03, 0.005 at alpha 0.05 rejects H1 and H4
    # only; adjusted p-values (Holm 1979; Wright 1992) are 0.03, 0.06, 0.06, 0.02
    adjusted = check.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [a < 0.05 for a in adjusted] == [True, False, False, True]


def test_a_consistent_drop_of_005_pesq_over_200_utterances_fails(real, tmp_path, capsys):
    base = make_baseline(derived(real, tmp_path / "a", 200), tmp_path / "b.jsonl")

    def drop(codec, bitrate, key, i, value, rng):  # -0.05 on every utterance, with seeded spread around it
        return value - 0.05 + rng.normal(0, 0.02) if (codec, bitrate, key) == ("codec2", "3.2k", "pesq_nb") else value

    ws = derived(real, tmp_path / "c", 200, drop)
    capsys.readouterr()
    assert run_check(ws, base, "--junit", str(tmp_path / "j.xml")) == 1
    err = capsys.readouterr().err
    assert "regressed codec2@3.2k pesq_nb" in err
    cases = junit_cases(tmp_path / "j.xml")
    assert {k for k, v in cases.items() if v} == {"svbench.check.codec2@3.2k pesq_nb"}
    assert len(cases) == 8  # 2 codecs x 2 bitrates x (pesq_nb, lsd_db): one test case per cell
    # the same drop inside a wider tolerance is no regression, by key or by metric card name
    assert run_check(ws, base, "--tolerance", "pesq_nb=0.06") == 0
    assert run_check(ws, base, "--tolerance", "pesq=0.06") == 0


@pytest.mark.parametrize("n", [200, 20])
def test_a_one_utterance_fluke_does_not_fail(real, tmp_path, n):
    base = make_baseline(derived(real, tmp_path / "a", n), tmp_path / "b.jsonl")

    def fluke(codec, bitrate, key, i, value, rng):  # one utterance loses 2 PESQ points (of about 2.5-3.5)
        return value - 2.0 if (codec, bitrate, key, i) == ("codec2", "3.2k", "pesq_nb", 7) else value

    ws = derived(real, tmp_path / "c", n, fluke)
    assert run_check(ws, base) == 0
    cell = next(c for c in check.compare(baseline_mod.read(base), check.load_current(ws / "svbench.sqlite"))
                if c.name == "codec2@3.2k pesq_nb")
    assert cell.change == pytest.approx(-2.0 / n)
    if n == 20:  # the mean moved by more than the tolerance: only the paired test keeps the build green
        assert abs(cell.change) > cell.tolerance and cell.p_holm == 1.0 and cell.status == "unchanged"


def test_direction_comes_from_the_metric_card(real, tmp_path):
    """LSD is lower-is-better: 0.1 dB more is a regression, 0.1 dB less an improvement."""
    base = make_baseline(derived(real, tmp_path / "a", 60), tmp_path / "b.jsonl")
    for sign, want_code, want in ((+1, 1, "regressed"), (-1, 0, "improved")):
        def shift(codec, bitrate, key, i, value, rng, sign=sign):
            return value + sign * 0.1 if (codec, bitrate, key) == ("codec2", "1.2k", "lsd_db") else value

        ws = derived(real, tmp_path / f"c{sign}", 60, shift)
        assert run_check(ws, base) == want_code
        cells = {c.name: c.status for c in check.compare(baseline_mod.read(base),
                                                         check.load_current(ws / "svbench.sqlite"))}
        assert cells["codec2@1.2k lsd_db"] == want
        assert set(cells.values()) == {want, "unchanged"}


# ---------------------------------------------------------------- cells that come and go


def test_an_unchanged_store_passes_and_the_table_fits_80_columns(real, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    base = make_baseline(real, tmp_path / "b.jsonl")
    capsys.readouterr()
    assert run_check(real, base, "--junit", str(tmp_path / "j.xml")) == 0
    err = capsys.readouterr().err
    assert "0 regressed, 0 missing, 0 improved, 0 new, 8 unchanged" in err
    lines = err.splitlines()
    table = lines[:lines.index(next(line for line in lines if line.startswith("0 regressed")))]
    assert all(len(line) <= 80 and "…" not in line for line in table if not line.startswith("notice"))
    assert set(junit_cases(tmp_path / "j.xml").values()) == {None}


def without_codec2_at_12k(real: Path, ws: Path) -> Path:
    shutil.copytree(real, ws, ignore=shutil.ignore_patterns("cache"))
    with sqlite3.connect(ws / "svbench.sqlite") as db:
        for table in ("scores", "units"):
            db.execute(f"DELETE FROM {table} WHERE codec = 'codec2' AND bitrate = '1.2k'")
    return ws


def test_a_missing_cell_fails_and_a_new_one_does_not(real, tmp_path, capsys):
    base = make_baseline(real, tmp_path / "b.jsonl")
    ws = without_codec2_at_12k(real, tmp_path / "c")
    capsys.readouterr()
    assert run_check(ws, base) == 1
    err = capsys.readouterr().err
    assert "missing codec2@1.2k pesq_nb" in err and "missing codec2@1.2k lsd_db" in err
    small = make_baseline(ws, tmp_path / "small.jsonl")
    assert run_check(real, small) == 0  # codec2@1.2k's cells are new: reported, not failed
    assert "2 new" in capsys.readouterr().err


def test_an_utterance_that_lost_its_value_regresses(real, tmp_path, capsys):
    base = make_baseline(real, tmp_path / "b.jsonl")
    ws = tmp_path / "c"
    shutil.copytree(real, ws, ignore=shutil.ignore_patterns("cache"))
    with sqlite3.connect(ws / "svbench.sqlite") as db:  # as a metric that became undefined stores it
        db.execute("UPDATE scores SET value = NULL, reason = 'not defined: test' WHERE codec = 'opus' "
                   "AND bitrate = '3.2k' AND key = 'pesq_nb' AND utt_id = (SELECT MIN(utt_id) FROM units)")
    capsys.readouterr()
    assert run_check(ws, base) == 1
    assert "regressed opus@3.2k pesq_nb: 1 utterance(s) scored in the baseline have no value now" in \
        capsys.readouterr().err


def test_an_utterance_left_out_of_the_run_is_said_not_failed(real, tmp_path, capsys):
    base = make_baseline(real, tmp_path / "b.jsonl")
    ws = tmp_path / "c"
    shutil.copytree(real, ws, ignore=shutil.ignore_patterns("cache"))
    with sqlite3.connect(ws / "svbench.sqlite") as db:  # as a run on a manifest without that utterance
        for table in ("scores", "units"):
            db.execute(f"DELETE FROM {table} WHERE utt_id = (SELECT MIN(utt_id) FROM units)")
    capsys.readouterr()
    assert run_check(ws, base) == 0
    assert "unchanged opus@3.2k pesq_nb: 1 baseline utterance(s) not in this run" in capsys.readouterr().err


# ---------------------------------------------------------------- the baseline file


def test_the_baseline_keeps_exact_values_and_no_machine_paths(real, tmp_path):
    path = make_baseline(real, tmp_path / "b.jsonl")
    text = path.read_text()
    assert str(tmp_path) not in text and str(SPEECH) not in text and '"/' not in text
    b = baseline_mod.read(path)
    frame = tidy.load(real / "svbench.sqlite")
    for (codec, bitrate, _metric, key), values in b.cells.items():
        rows = frame[(frame.codec == codec) & (frame.bitrate == bitrate) & (frame.key == key)]
        stored = dict(zip(rows.utt_id.astype(str), rows.value, strict=True))
        assert [stored[u] for u in b.utterances] == values.tolist()  # to the last digit
    pesq_card = next(iter(b.metrics["pesq"]["keys"].values()))
    assert pesq_card == {"higher_is_better": True, "tolerance": 0.02}  # metrics/pesq.toml [check]
    assert b.metrics["lsd"]["keys"]["lsd_db"]["higher_is_better"] is False
    assert [r["run"] for r in b.runs] == list(frame.run_id.astype(str).unique())
    assert b.runs[0]["versions"]["pesq"]


def test_a_baseline_of_another_metric_definition_is_refused(real, tmp_path, capsys):
    path = make_baseline(real, tmp_path / "b.jsonl")
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith('{"metric": "pesq"'))
    record = json.loads(lines[i])
    record["card_sha256"] = "0" * 64
    lines[i] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert run_check(real, path, "--junit", str(tmp_path / "j.xml")) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "metric pesq" in err and "another metric definition" in err
    assert not (tmp_path / "j.xml").exists()


@pytest.mark.parametrize("line, edit, expect", [
    (1, lambda r: {"format": "csv"}, "line 1: field 'baseline': missing"),
    (1, lambda r: {**r, "baseline": 7}, "field 'baseline': format version 7"),
    (3, None, "line 3: not JSON"),
    (-1, lambda r: {**r, "values": r["values"][:-1]}, "field 'values': 3 values, but the utterances line lists 4"),
    (-1, lambda r: {**r, "values": ["x", *r["values"][1:]]}, "field 'values': values must be numbers or null"),
    (-1, lambda r: {k: v for k, v in r.items() if k != "bps"}, "field 'bps': missing"),
    (-1, lambda r: {**r, "key": "nope"}, "field 'key': lsd/nope has no 'metric' line"),
])
def test_a_malformed_baseline_is_refused_naming_file_line_and_field(real, tmp_path, capsys, line, edit, expect):
    path = make_baseline(real, tmp_path / "b.jsonl")
    lines = path.read_text().splitlines()
    pick = line - 1 if line > 0 else next(i for i in range(len(lines) - 1, -1, -1) if '"metric": "lsd"' in lines[i]
                                          and lines[i].startswith('{"cell"'))
    lines[pick] = lines[pick][:-5] if edit is None else json.dumps(edit(json.loads(lines[pick])))
    path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert run_check(real, path) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"b.jsonl line {pick + 1}" in err and expect in err


@pytest.mark.parametrize("args", [
    ["--workspace", "REAL", "--run", "deadbeef"],
    ["--workspace", "nowhere"],
    ["--workspace", "nowhere", "--update"],
    ["--workspace", "REAL", "--tolerance", "pesq_nb=-1"],
    ["--workspace", "REAL", "--tolerance", "nosuchkey=0.1"],
])
def test_usage_errors_exit_2_and_create_nothing(real, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    base = make_baseline(real, tmp_path / "keep.jsonl")
    before = sorted(p.name for p in tmp_path.iterdir())
    target = "new.jsonl" if "--update" in args else str(base)
    args = [str(real) if a == "REAL" else a for a in args]
    assert main(["check", "--baseline", target, *args, "--junit", "out.xml"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no store, no baseline, no JUnit file


# ---------------------------------------------------------------- detectors


def test_detectors_on_real_runs(real):
    frame = tidy.load(real / "svbench.sqlite")
    notes = dict(detect.notices(frame))
    # README: Opus asked for 1.2k spends about 4.7k on speech, and its 1.2k and 3.2k rows are identical
    assert "above the nominal 1.2 kbit/s" in notes["opus@1.2k"]
    assert "same decoded audio" in notes["opus@1.2k/3.2k"]
    assert not any("codec2" in scope for scope in notes)  # Codec 2 spends what it says; its two modes differ
    codec2 = frame[frame.codec == "codec2"]
    assert not detect.delay_spread(codec2)  # a fixed-delay codec: the envelope estimate agrees across clips


def test_delay_spread_is_noticed(real):
    """No codec here has a varying delay, so the estimates of one real run are spread by hand (0-30 ms)."""
    frame = tidy.load(real / "svbench.sqlite")
    frame = frame[(frame.codec == "codec2") & (frame.bitrate == "3.2k")].copy()
    spread = {u: 10.0 * i for i, u in enumerate(sorted(frame.utt_id.astype(str).unique()))}
    frame["delay_ms"] = frame.utt_id.astype(str).map(spread)
    (scope, reason), = detect.delay_spread(frame)
    assert scope == "codec2@3.2k" and "IQR 15.0 ms" in reason  # quartiles of 0, 10, 20, 30: 7.5 and 22.5
