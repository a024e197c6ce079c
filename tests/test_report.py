"""Reports from a real store: two real `svbench run`s (Opus and Codec 2 on LibriSpeech clips), then the tidy
frame, the aggregation and the renderers, each checked against the store's own per-utterance rows."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from svbench.cli import main
from svbench.report import aggregate, figures, render, tidy
from svbench.report import overlay as overlay_mod
from svbench.report import spec as spec_mod

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
    (tmp / "less").mkdir()  # the same dataset without the short clip: opus 8k is scored on fewer utterances
    table[table.id != "short-0000"].to_csv(tmp / "less" / "librispeech.csv", index=False)
    ws = tmp / "ws"
    for codec, rates, manifest in (("opus", "6k,12k", tmp / "librispeech.csv"),
                                   ("codec2", "1.2k,3.2k", tmp / "librispeech.csv"),
                                   ("opus", "8k", tmp / "less" / "librispeech.csv")):
        code = main(["run", "--codec", codec, "--bitrate", rates, "--dataset", str(manifest),
                     "--metrics", "pesq,stoi,f0rmse", "--workers", "1", "--quiet", "--workspace", str(ws)])
        assert code == 1  # the silent file fails: exit 1 tells the truth
    store = ws / "svbench.sqlite"
    assert tidy._kept(store, tidy._state(store)).exists()  # a run ends by keeping its rows for the reports
    return store


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
    assert bare == 5  # the silent file at each of the 5 operating points
    assert len(frame) == n_scores + bare
    failed = frame[frame.status == "error"]
    assert len(failed) == 5 and set(failed.utt_id) == {"silent-0000"}
    assert failed.metric.isna().all() and failed.value.isna().all()
    assert (failed.stage == "reference").all() and failed.error.str.contains("silent").all()
    undefined = frame[frame.value.isna() & frame.metric.notna()]
    assert set(undefined.utt_id) == {"short-0000"} and set(undefined.metric) == {"stoi"} and len(undefined) == 4
    assert undefined.reason.str.startswith("not defined: clip too short").all()


def test_tidy_carries_names_and_card_hashes_from_the_run_config(store):
    frame = tidy.load(store)
    assert set(frame.dataset) == {"librispeech"}
    assert dict(frame.groupby("codec").bitrate.unique().map(sorted)) == {"codec2": ["1.2k", "3.2k"],
                                                                          "opus": ["12k", "6k", "8k"]}
    assert set(frame.bps) == {1200, 3200, 6000, 8000, 12000}
    pesq_hash = hashlib.sha256((REPO / "metrics" / "pesq.toml").read_bytes()).hexdigest()
    assert set(frame.loc[frame.metric == "pesq", "metric_card"]) == {pesq_hash}
    assert frame.codec_card.notna().all()


def test_tidy_selects_runs_and_refuses_unknown_ones(store):
    ids = [r[0] for r in _sql(store, "SELECT run_id FROM runs")]
    assert len(ids) == 3
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


# ---------------------------------------------------------------- aggregation

T_975 = {2: 4.303, 3: 3.182}  # Student t 0.975 quantiles, df 2 and 3 (any printed t table, 3 decimals)


def _spec(tmp_path: Path, text: str, name: str = "t") -> spec_mod.Spec:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return spec_mod.load(path)


PESQ_STOI_F0 = """
title = "test"
rows = ["codec", "bitrate"]
[[columns]]
metric = "pesq"
key = "pesq_*"
name = "PESQ"
id = "pesq"
[[columns]]
metric = "stoi"
key = "stoi"
name = "STOI"
[[columns]]
metric = "f0rmse"
key = "f0rmse_hz"
name = "F0RMSE"
unit = "Hz"
"""


@pytest.fixture(scope="module")
def result(store, tmp_path_factory):
    spec = _spec(tmp_path_factory.mktemp("spec"), PESQ_STOI_F0)
    return aggregate.aggregate(tidy.load(store), tidy.runs(store), spec)


def _stored(store: Path, codec: str, bitrate: str, key: str) -> np.ndarray:
    rows = _sql(store, f"SELECT value FROM scores WHERE codec = '{codec}' AND bitrate = '{bitrate}' "
                f"AND key = '{key}' AND value IS NOT NULL")
    return np.array([r[0] for r in rows])


def test_cells_are_mean_and_student_t_interval_of_the_stored_values(store, result):
    assert len(result.rows) == 5
    for row in result.rows.itertuples():
        for column, key in (("pesq", "pesq_nb"), ("stoi", "stoi")):
            cell = result.cells[(result.cells.codec == row.codec) & (result.cells.bitrate == row.bitrate)
                                & (result.cells.column == column)].iloc[0]
            values = _stored(store, row.codec, row.bitrate, key)
            n = len(values)
            assert cell.n == n
            assert cell["mean"] == pytest.approx(values.mean(), rel=1e-12)
            half = T_975[n - 1] * values.std(ddof=1) / np.sqrt(n)
            assert (cell.ci_hi - cell.ci_lo) / 2 == pytest.approx(half, rel=2e-4)  # table has 4 digits
            assert cell.ci_lo < cell["mean"] < cell.ci_hi


def test_n_failed_and_undefined_are_counted_not_hidden(result):
    rows = result.rows.set_index(["codec", "bitrate"])
    # 5 manifest rows: the silent file failed everywhere; opus 8k's manifest has no short clip
    assert (rows.units_failed == 1).all()
    assert rows.units_ok.to_dict() == {("codec2", "1.2k"): 4, ("codec2", "3.2k"): 4, ("opus", "6k"): 4,
                                       ("opus", "8k"): 3, ("opus", "12k"): 4}
    cells = result.cells.set_index(["codec", "bitrate", "column"])
    assert cells.loc[("opus", "6k", "pesq"), "n"] == 4  # the 0.3 s clip has a PESQ
    stoi = cells.loc[("opus", "6k", "stoi")]
    assert stoi.n == 3 and stoi.undefined == 1 and stoi.reason.startswith("not defined: clip too short")
    assert cells.loc[("opus", "8k", "stoi"), "undefined"] == 0


def test_cells_over_fewer_utterances_are_flagged_and_common_restricts(store, result, tmp_path):
    cells = result.cells.set_index(["codec", "bitrate", "column"])
    assert cells.loc[("opus", "8k", "pesq"), "partial"]  # 3 utterances where the other rows have 4
    assert not cells.loc[("opus", "6k", "pesq"), "partial"]
    assert any("fewer utterances" in n for n in result.notes)
    common = aggregate.aggregate(tidy.load(store), tidy.runs(store), result.spec, common=True)
    assert set(common.cells.n) == {3} and not common.cells.partial.any()
    pesq6 = common.cells.set_index(["codec", "bitrate", "column"]).loc[("opus", "6k", "pesq")]
    assert pesq6.left_out == 1 and pesq6.undefined == 0  # left out by --common, not undefined
    opus6 = common.cells[(common.cells.codec == "opus") & (common.cells.bitrate == "6k")
                         & (common.cells.column == "pesq")].iloc[0]
    values = _stored(store, "opus", "6k", "pesq_nb")  # in store order: which one is the short clip?
    short = _sql(store, "SELECT value FROM scores WHERE codec = 'opus' AND bitrate = '6k' AND key = 'pesq_nb' "
                 "AND utt_id = 'short-0000'")[0][0]
    assert opus6["mean"] == pytest.approx((values.sum() - short) / 3, rel=1e-12)


def test_direction_comes_from_the_metric_card(result):
    hib = {c.id: c.higher_is_better for c in result.columns}
    assert hib == {"pesq": True, "stoi": True, "f0rmse_hz": False}  # F0 error: lower is better


def test_csv_is_tidy_with_mean_ci_n_and_units(tmp_path, result):
    path = render.write_csv(result, tmp_path / "t.csv")
    table = pd.read_csv(path)
    assert len(table) == 5
    for col in ("units_ok", "units_failed", "pesq_mean", "pesq_ci_lo", "pesq_ci_hi", "pesq_n", "stoi_n",
                "f0rmse_hz_mean"):
        assert col in table.columns
    assert (table.pesq_ci_lo < table.pesq_mean).all() and (table.pesq_mean < table.pesq_ci_hi).all()


def test_markdown_says_the_method_and_marks_partial_cells(result):
    text = render.markdown(result)
    assert "Student t" in text and "PESQ ↑" in text and "F0RMSE [Hz] ↓" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("| opus | 8k"))
    assert "*" in line.split("|")[5]  # the PESQ cell over 3 utterances


def test_latex_bolds_the_best_value_per_direction(store, result):
    text = render.latex(result)
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text  # booktabs
    assert r"PESQ $\uparrow$" in text and r"F0RMSE [Hz] $\downarrow$" in text
    body = [ln for ln in text.splitlines() if " & " in ln and "$\\pm$" in ln]
    pairs = [(r.codec, r.bitrate) for r in result.rows.itertuples()]
    best_pesq = max(pairs, key=lambda p: _stored(store, *p, "pesq_nb").mean())  # higher is better
    best_f0 = min(pairs, key=lambda p: _stored(store, *p, "f0rmse_hz").mean())  # lower is better
    assert len(body) == 5
    for ln in body:
        cells = [c.strip() for c in ln.rstrip("\\ ").split("&")]
        here = (cells[0], cells[1])
        assert cells[4].startswith(r"\textbf{") == (here == best_pesq)
        assert cells[6].startswith(r"\textbf{") == (here == best_f0)


# ---------------------------------------------------------------- the command


def test_report_command_writes_csv_md_tex(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", "table3", "--workspace", str(store.parent), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["table3.csv", "table3.md", "table3.tex"]
    table = pd.read_csv(out / "table3.csv")
    assert table.visqol_n.eq(0).all() and table.visqol_reason.str.contains("not computed").all()


def test_unknown_run_is_a_usage_error_that_creates_nothing(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", "table3", "--workspace", str(store.parent), "--run", "deadbeef", "-o", str(out)]) == 2
    assert "no run with id 'deadbeef'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["report", "table3", "--workspace", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    assert "no run store" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "nowhere").exists()


def test_malformed_spec_names_file_line_and_field(store, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\n[[columns]]\nmetric = "pesq"\n[[columns]]\nmetric = "mcd"\ndirection = "up"\n')
    assert main(["report", str(bad), "--workspace", str(store.parent), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 6" in err and "columns[1].direction" in err and "'up'" in err
    with pytest.raises(tidy.ReportError, match=r"bad\.toml: line 2: field 'rows'"):
        _spec(tmp_path, 'title = "x"\nrows = ["codec", "speaker"]\n[[columns]]\nmetric = "pesq"\n', "bad")
    with pytest.raises(tidy.ReportError, match=r"not valid TOML.*line 1"):
        _spec(tmp_path, 'title = "x\n', "bad")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- figures


def test_figure_draws_means_at_measured_kbps_with_ci_bars_and_hollow_published_points(store, tmp_path):
    spec = _spec(tmp_path, 'kind = "figure"\n' + PESQ_STOI_F0, "fig")
    res = aggregate.aggregate(tidy.load(store), tidy.runs(store), spec)
    published = tmp_path / "published.csv"
    published.write_text("metric,codec,kbps,value,source\npesq,opus,6,2.5,a paper, read by eye\n")
    fig = figures.figure(res, res.columns, overlay_mod.Overlay(published))
    ax = next(a for a in fig.axes if a.get_title().startswith("PESQ"))
    bars = next(c for c in ax.containers if c.get_label() == "opus")
    x, y = bars.lines[0].get_xdata(), bars.lines[0].get_ydata()
    for bitrate, xi, yi, seg in zip(("6k", "8k", "12k"), x, y, bars.lines[2][0].get_segments(), strict=True):
        kbps = _sql(store, f"SELECT AVG(measured_bps) / 1000 FROM units WHERE codec = 'opus' AND bitrate = '{bitrate}'"
                    " AND status = 'ok'")[0][0]
        values = _stored(store, "opus", bitrate, "pesq_nb")
        half = T_975[len(values) - 1] * values.std(ddof=1) / np.sqrt(len(values))
        assert xi == pytest.approx(kbps) and yi == pytest.approx(values.mean())
        assert seg[:, 1] == pytest.approx([values.mean() - half, values.mean() + half], rel=2e-4)
    theirs = next(ln for ln in ax.lines if ln.get_label() == "opus (published)")
    assert theirs.get_markerfacecolor() == "none" and list(theirs.get_ydata()) == [2.5]
    written = figures.write(res, tmp_path, ("png", "pdf"))
    assert [p.name for p in written] == ["fig.png", "fig.pdf"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[1].read_bytes()[:5] == b"%PDF-"


def test_overlay_refuses_a_bad_file_naming_line_and_field(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("metric,codec,kbps,value\npesq,opus,6,2.5\npesq,opus,eight,2.6\n")
    with pytest.raises(tidy.ReportError, match=r"bad\.csv: line 3: field 'kbps': not a number: 'eight'"):
        overlay_mod.Overlay(bad)
    (tmp_path / "cols.csv").write_text("metric,codec,value\n")
    with pytest.raises(tidy.ReportError, match="missing kbps"):
        overlay_mod.Overlay(tmp_path / "cols.csv")


def test_overlay_adds_published_and_ours_minus_theirs_to_tables(result, tmp_path):
    published = tmp_path / "p.csv"
    published.write_text("metric,codec,kbps,value,source\npesq,opus,6,2.5,x\nstoi,codec2,1.2,0.7,x\n")
    table = render.wide(result, overlay_mod.Overlay(published)).set_index(["codec", "bitrate"])
    assert table.loc[("opus", "6k"), "pesq_published"] == 2.5
    assert table.loc[("opus", "6k"), "pesq_diff"] == pytest.approx(table.loc[("opus", "6k"), "pesq_mean"] - 2.5)
    assert table.loc[("codec2", "1.2k"), "stoi_published"] == 0.7
    assert np.isnan(table.loc[("opus", "12k"), "pesq_published"])


# ---------------------------------------------------------------- every spec, dataset rows, the runs listing


def test_report_all_renders_every_shipped_table_and_figure(store, tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["report", "all", "--workspace", str(store.parent), "-o", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    for spec in ("table1", "table2", "table3", "table5"):
        assert {f"{spec}.csv", f"{spec}.md", f"{spec}.tex"} <= names
    assert {"fig-bitrate.png", "fig-bitrate.pdf"} <= names
    assert "no rows: none of the runs has codecs svcodec-v1, svcodec-v2, svcodec" in (out / "table1.md").read_text()
    table2 = pd.read_csv(out / "table2.csv").set_index(["codec", "bitrate"])
    gpe = _stored(store, "codec2", "1.2k", "f0rmse_gpe")
    assert table2.loc[("codec2", "1.2k"), "f0rmse_gpe_mean"] == pytest.approx(gpe.mean())
    assert table2.loc[("codec2", "1.2k"), "f0rmse_hz_median"] == pytest.approx(
        np.median(_stored(store, "codec2", "1.2k", "f0rmse_hz")))


def test_rows_by_dataset_and_bitrate(store, tmp_path):
    spec = _spec(tmp_path, 'rows = ["dataset", "bitrate"]\ncodecs = ["opus"]\n[[columns]]\nmetric = "pesq"\n')
    res = aggregate.aggregate(tidy.load(store), tidy.runs(store), spec)
    assert res.rows[["dataset", "bitrate"]].values.tolist() == [["librispeech", "6k"], ["librispeech", "8k"],
                                                                ["librispeech", "12k"]]
    assert res.columns[0].key == "pesq_nb"  # the default key pattern: the metric's own prefix


def test_runs_listing_fits_80_columns(store):
    done = subprocess.run([sys.executable, "-m", "svbench", "runs", "--workspace", str(store.parent)],
                          capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for run_id, in _sql(store, "SELECT run_id FROM runs"):
        assert run_id in done.stdout  # ids whole, never cut
    assert "8 / 2" in done.stdout and "3 / 1" in done.stdout  # units ok / failed of the runs
    missing = subprocess.run([sys.executable, "-m", "svbench", "runs", "--workspace", str(store.parent / "nope")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "no run store" in missing.stderr


def test_rows_the_spec_names_but_no_run_has_are_explicit_empty_rows(store, tmp_path):
    spec = _spec(tmp_path, 'codecs = ["opus", "speex"]\nbitrates = ["6k", "12k"]\n[[columns]]\nmetric = "pesq"\n')
    res = aggregate.aggregate(tidy.load(store), tidy.runs(store), spec)
    assert res.rows[["codec", "bitrate"]].values.tolist() == [["opus", "6k"], ["opus", "12k"], ["speex", "6k"],
                                                              ["speex", "12k"]]
    speex = res.cells[res.cells.codec == "speex"]
    assert (speex.n == 0).all() and (speex.reason == "not in these runs").all()
    assert "speex | 6k | – | 0/0 | – (not in these runs)" in render.markdown(res)


def test_figure_names_columns_without_values_instead_of_drawing_them_empty(store, tmp_path):
    spec = _spec(tmp_path, 'kind = "figure"\n[[columns]]\nmetric = "pesq"\n[[columns]]\nmetric = "visqol"\n'
                 'name = "ViSQOL"\n', "fig2")
    res = aggregate.aggregate(tidy.load(store), tidy.runs(store), spec)
    fig = figures.figure(res, res.columns)
    assert [a.get_title() for a in fig.axes if a.get_visible()] == ["pesq ↑"]
    assert "no values in these runs: ViSQOL" in fig._suptitle.get_text()


def test_a_key_no_run_stored_says_so_not_another_keys_reason(store, tmp_path):
    spec = _spec(tmp_path, '[[columns]]\nmetric = "f0rmse"\nkey = "f0rmse_octaves"\nname = "X"\n')
    res = aggregate.aggregate(tidy.load(store), tidy.runs(store), spec)
    assert set(res.cells.reason) == {"no f0rmse_octaves in these runs: f0rmse stored other keys"}


def test_tidy_is_the_same_with_the_key_scan_in_this_process(store):
    """The store is read with the key index scanned in a forked process where it can (checked against its
    own snapshot); the serial path, taken elsewhere or when a run wrote in between, gives the same frame."""
    pd.testing.assert_frame_equal(tidy._read(store, parallel=False), tidy._read(store, parallel=True))


def test_tidy_keeps_the_read_store_and_rereads_it_after_any_write(store, tmp_path):
    """A second load of an unchanged store comes from the kept Arrow file and equals the SQLite read; any
    write to the store, even an in-place UPDATE that keeps every rowid, makes the next load read SQLite."""
    copy = tmp_path / "svbench.sqlite"
    shutil.copy(store, copy)
    first = tidy.load(copy)
    kept = list(tmp_path.glob(".svbench.sqlite.tidy-*.arrow"))
    assert len(kept) == 1
    written = kept[0].stat().st_mtime_ns
    pd.testing.assert_frame_equal(tidy.load(copy), first)
    assert kept[0].stat().st_mtime_ns == written  # read, not written again: reading left the state as it was
    pd.testing.assert_frame_equal(pd.read_feather(kept[0]), tidy._read(copy, parallel=False))
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE scores SET value = -1.0 WHERE metric = 'pesq'")
    db.close()
    after = tidy.load(copy)
    assert (after[after.metric == "pesq"].value.dropna() == -1.0).all()
    assert list(tmp_path.glob(".svbench.sqlite.tidy-*.arrow")) != kept  # the stale file is gone
