"""``svbench check``: the current results against a baseline, per codec x bitrate x metric key.

A cell regresses when its mean paired change (current minus baseline, over the utterances both scored)
goes the wrong way by more than the key's absolute tolerance AND a two-sided Wilcoxon signed-rank test
on those paired values is significant at ALPHA after Holm's correction over every compared cell; a
baseline utterance that has no value now (its unit failed, or the metric became undefined) also makes
its cell regress. The same rule the other way is an improvement. Method and file format: docs/check.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svbench.cards import get_card
from svbench.report import tidy
from svbench.report.baseline import Baseline, BaselineError, CellKey, cell_name

ALPHA = 0.05
STATUSES = ("regressed", "missing", "improved", "new", "unchanged")


@dataclass
class Current:
    """The tidy rows being checked: for each codec@bitrate, those of the latest run that has it."""

    frame: pd.DataFrame
    runs: pd.DataFrame
    notices: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Cell:
    cell: CellKey
    bps: int
    status: str = "unchanged"
    base_mean: float = math.nan
    now_mean: float = math.nan
    change: float = math.nan  # mean paired difference, current - baseline
    n: int = 0  # utterances scored in both
    tolerance: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    reason: str = ""

    @property
    def name(self) -> str:
        return cell_name(self.cell)


def load_current(store_path: Path, run_ids: list[str] | None = None) -> Current:
    info = tidy.runs(store_path, run_ids)
    frame = tidy.load(store_path, info.run_id.tolist())
    order = {r: i for i, r in enumerate(info.sort_values(["updated", "created"]).run_id)}
    notices: list[tuple[str, str]] = []
    if frame.run_id.nunique() > 1:  # a codec@bitrate in several runs: keep the latest run's rows
        codes = [codes_of(frame[c]) for c in ("codec", "bitrate", "run_id")]
        names = [codes_of(frame[c], names=True) for c in ("codec", "bitrate", "run_id")]
        sizes = [len(n) + 1 for n in names]
        key = (codes[0] * sizes[1] + codes[1]) * sizes[2] + codes[2]
        latest: dict[tuple[int, int], int] = {}
        runs_of: dict[tuple[int, int], list[str]] = {}
        for k in np.unique(key):
            pair, run = divmod(int(k), sizes[2])
            cb = divmod(pair, sizes[1])
            runs_of.setdefault(cb, []).append(str(names[2][run]))
            if cb not in latest or order[str(names[2][run])] > order[str(names[2][latest[cb]])]:
                latest[cb] = run
        for (c, b), found in runs_of.items():
            if len(found) > 1:
                found.sort(key=order.__getitem__)
                notices.append((f"{names[0][c]}@{names[1][b]}", f"in {len(found)} runs ({', '.join(found)}); "
                                f"compared the latest, {found[-1]}"))
        chosen = [(c * sizes[1] + b) * sizes[2] + r for (c, b), r in latest.items()]
        frame = frame[np.isin(key, chosen)].reset_index(drop=True)
    chosen_runs = {str(r) for r in frame.run_id.unique()}
    return Current(frame, info[info.run_id.isin(chosen_runs)].reset_index(drop=True), notices)


def codes_of(series: pd.Series, names: bool = False) -> np.ndarray:
    """Integer codes of a (categorical) text column, or its distinct values with ``names``."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return np.asarray(series.cat.categories, dtype=object) if names else series.cat.codes.to_numpy(np.int64)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(uniques, dtype=object) if names else codes.astype(np.int64)


def _cells(frame: pd.DataFrame, utterances: list[str]) -> tuple[dict[CellKey, np.ndarray], dict[tuple[str, str],
                                                                                               np.ndarray]]:
    """Current values per cell aligned with ``utterances`` (NaN = none), and which utterances each
    codec@bitrate has a unit for (any status)."""
    index = pd.Index(utterances)
    units = frame.drop_duplicates(["codec", "bitrate", "utt_id"])
    present: dict[tuple[str, str], np.ndarray] = {}
    unit_pos = index.get_indexer(units.utt_id)
    for pair, rows in units.groupby(["codec", "bitrate"], sort=False, observed=True).indices.items():
        mask = np.zeros(len(utterances), dtype=bool)
        pos = unit_pos[rows]
        mask[pos[pos >= 0]] = True
        present[pair] = mask
    scored = frame[frame.metric.notna()]
    pos_all = index.get_indexer(scored.utt_id)
    values_all = scored.value.to_numpy(dtype=np.float64)
    cells: dict[CellKey, np.ndarray] = {}
    groups = scored.groupby(["codec", "bitrate", "metric", "key"], sort=False, observed=True).indices
    for cell, rows in groups.items():
        values = np.full(len(utterances), np.nan)
        pos = pos_all[rows]
        keep = pos >= 0
        values[pos[keep]] = values_all[rows][keep]
        if np.isfinite(values).any():  # not the engine's row for an undefined metric (keyed by the metric's name)
            cells[cell] = values
    return cells, present


def _bps(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    pairs = frame[["codec", "bitrate", "bps"]].drop_duplicates(["codec", "bitrate"])
    return {(c, b): int(n) for c, b, n in pairs.itertuples(index=False)}


# ---------------------------------------------------------------- making a baseline


def make_baseline(current: Current) -> Baseline:
    frame = current.frame
    utterances = sorted(frame.utt_id.unique().tolist())
    cells, _ = _cells(frame, utterances)
    metrics: dict[str, dict[str, Any]] = {}
    config = dict(zip(current.runs.run_id, current.runs.config, strict=True))
    scored = frame[frame.metric.notna()]
    for metric, rows in scored.groupby("metric", sort=True, observed=True):
        keys = sorted({k for _, _, m, k in cells if m == metric})
        if not keys:
            continue  # undefined on every utterance: nothing to compare against later
        hashes = sorted(rows.metric_card.dropna().unique())
        if len(hashes) != 1:
            raise BaselineError(f"metric {metric}: the selected runs used {len(hashes)} card versions "
                                f"({', '.join(h[:12] for h in hashes)}); choose runs with --run")
        definition = config[rows.run_id.iloc[0]].get("metric_definitions", {}).get(metric, {})
        metrics[str(metric)] = {"card_sha256": hashes[0],
                                "keys": {k: _key_policy(str(metric), k, hashes[0], definition) for k in keys}}
    codecs = {}
    for codec, rows in frame.groupby("codec", sort=True, observed=True):
        codecs[codec] = ",".join(sorted(str(v) for v in rows.codec_card.dropna().unique()))
    runs = []
    for run in current.runs.itertuples():
        env = run.environment
        runs.append({"run": run.run_id, "dataset": run.dataset, "git_commit": env.get("git_commit"),
                     "python": env.get("python"), "machine": env.get("machine"), "versions": env.get("versions", {})})
    try:
        svbench_version = version("svbench")
    except PackageNotFoundError:
        svbench_version = None
    header = {"svbench": svbench_version, "datasets": sorted(current.runs.dataset.unique().tolist())}
    return Baseline(header, runs, utterances, metrics, codecs, cells, _bps(frame))


def _key_policy(metric: str, key: str, card_sha: str, definition: dict[str, Any]) -> dict[str, Any]:
    """Direction and tolerance of one key, from the metric card the run used (its ``[check]`` table)."""
    try:
        card = get_card("metrics", metric)
    except KeyError:
        card = None
    if card is None or card.sha256 != card_sha:
        found = f"the card found now has sha256 {card.sha256[:12]} ({card.path})" if card else "no card is found now"
        raise BaselineError(f"metric {metric}: the run used card sha256 {card_sha[:12]} but {found}; re-run with "
                            "the current card before --update (its [check] table sets the tolerance)")
    check = card.data.get("check", {})
    per_key = _match_key(check.get("keys", {}), key)
    higher = per_key.get("higher_is_better", definition.get("higher_is_better", True))
    tolerance = per_key.get("tolerance", check.get("tolerance", 0.0))
    return {"higher_is_better": bool(higher), "tolerance": float(tolerance)}


def _match_key(table: dict[str, Any], key: str) -> dict[str, Any]:
    """A per-key entry; ``f0rmse_vde`` also covers keys that say where they were computed (``..._from8k``)."""
    for name, entry in table.items():
        if key == name or key.startswith(name + "_from"):
            return dict(entry)
    return {}


# ---------------------------------------------------------------- comparing


def refusals(baseline: Baseline, current: Current) -> list[str]:
    """Metrics whose card differs between baseline and current results: such cells are not comparable."""
    out = []
    scored = current.frame[current.frame.metric.notna()]
    for metric, hashes in scored.groupby("metric", observed=True).metric_card.unique().items():
        want = baseline.metrics.get(str(metric), {}).get("card_sha256")
        other = sorted(str(h) for h in hashes if h != want)
        if want and other:
            out.append(f"metric {metric}: the baseline was made with card sha256 {want[:12]}, the current results "
                       f"with {', '.join(h[:12] for h in other)} (another metric definition); make a new baseline "
                       "with --update")
    return out


def compare(baseline: Baseline, current: Current, tolerances: dict[str, float] | None = None) -> list[Cell]:
    tolerances = tolerances or {}
    now, present = _cells(current.frame, baseline.utterances)
    bps = {**baseline.bps, **_bps(current.frame)}
    out: list[Cell] = []
    for key in sorted(set(baseline.cells) | set(now), key=lambda c: (c[0], bps.get(c[:2], 0), c[1], c[3])):
        cell = Cell(key, bps.get(key[:2], 0))
        policy = baseline.key_info(key[2], key[3])
        cell.tolerance = tolerances.get(key[3], tolerances.get(key[2], policy.get("tolerance", math.nan)))
        out.append(cell)
        if key not in baseline.cells:
            cell.status, cell.reason = "new", "not in the baseline"
            cell.now_mean = float(np.nanmean(now[key])) if np.isfinite(now[key]).any() else math.nan
            continue
        base = baseline.cells[key]
        had = np.isfinite(base)
        if key not in now:
            there = key[:2] in present
            cell.status = "missing"
            cell.reason = "no values now" if there else f"{key[0]}@{key[1]} is not in the current results"
            continue
        values = now[key]
        shared = had & np.isfinite(values)
        lost = had & ~np.isfinite(values) & present.get(key[:2], np.zeros(len(base), dtype=bool))
        cell.n = int(shared.sum())
        if cell.n == 0:
            cell.status = "missing"
            cell.reason = (f"none of the baseline's {int(had.sum())} scored utterances is scored now"
                           + (f" ({int(lost.sum())} have no value)" if lost.any() else " (another dataset?)"))
            continue
        diff = values[shared] - base[shared]
        cell.base_mean, cell.now_mean = float(base[shared].mean()), float(values[shared].mean())
        cell.change = float(diff.mean())
        if np.any(diff != 0):
            from scipy.stats import wilcoxon  # here: importing scipy.stats takes a second, unneeded when nothing moved

            cell.p = float(wilcoxon(diff).pvalue)
        else:
            cell.p = 1.0
        if lost.any():
            ids = [baseline.utterances[i] for i in np.flatnonzero(lost)]
            cell.status = "regressed"
            cell.reason = f"{len(ids)} utterance(s) scored in the baseline have no value now: {', '.join(ids[:3])}" + (
                ", ..." if len(ids) > 3 else "")
        skipped = int((had & ~shared & ~lost).sum())
        if skipped:
            cell.reason = "; ".join(filter(None, [cell.reason, f"{skipped} baseline utterance(s) not in this run"]))
    _classify(out, baseline)
    return out


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the i-th smallest becomes max over j <= i of min(1, (m - j + 1) p_(j))."""
    m = len(p)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p[i])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def _classify(cells: list[Cell], baseline: Baseline) -> None:
    tested = [c for c in cells if not math.isnan(c.p)]
    for c, adj in zip(tested, holm([c.p for c in tested]), strict=True):
        c.p_holm = adj
        if c.status != "unchanged":  # already regressed: lost utterances
            continue
        higher = baseline.key_info(c.cell[2], c.cell[3]).get("higher_is_better", True)
        if adj < ALPHA and abs(c.change) > c.tolerance:
            better = c.change > 0 if higher else c.change < 0
            c.status = "improved" if better else "regressed"
            c.reason = "; ".join(filter(None, [c.reason, f"mean {'+' if c.change > 0 else ''}{c.change:.4g} "
                                 f"({'higher' if higher else 'lower'} is better)"]))
