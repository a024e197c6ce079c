"""Detectors of silently wrong numbers, over the tidy frame (``svbench.report.tidy``).

Each returns notices ``(scope, reason)``; :func:`notices` runs them all. A notice does not change a
number or an exit code: it says where a table's numbers may not mean what their labels say.

- :func:`bitrate_off`: a codec whose measured bitrate is more than 10% away from the nominal one
  (Opus asked for 1.2k spends about 4.7k on speech).
- :func:`same_output`: two nominal bitrates of one codec with the same measured bitrate and the same
  score for every key on every utterance. svbench does not store a hash of the decoded audio, so this
  is a proxy, named as such: different audio scoring identically to the last digit everywhere is not
  plausible, but it is not proof.
- :func:`delay_spread`: a codec whose estimated delay varies across utterances by more than 5 ms
  (interquartile range, at least 4 utterances): a fixed-delay codec should not, so alignment is off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BITRATE_OFF = 0.10  # relative
DELAY_IQR_MS = 5.0
DELAY_MIN_UTTERANCES = 4

UNIT = ["run_id", "codec", "bitrate", "utt_id"]
ROW = ["run_id", "codec", "bps", "bitrate"]  # one table row


def notices(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Every detector's notices for a tidy frame (one run or several)."""
    return bitrate_off(frame) + same_output(frame) + delay_spread(frame)


def _ok_units(frame: pd.DataFrame) -> pd.DataFrame:
    units = frame.drop_duplicates(UNIT)
    return units[units.status == "ok"]


def _scope(frame: pd.DataFrame, run_id: str, codec: str, bitrate: str) -> str:
    several = frame.run_id.nunique() > 1
    return f"{'run ' + run_id + ' ' if several else ''}{codec}@{bitrate}"


def bitrate_off(frame: pd.DataFrame, limit: float = BITRATE_OFF) -> list[tuple[str, str]]:
    units = _ok_units(frame)
    units = units[(units.bps > 0) & units.measured_bps.notna()]
    out = []
    for (run_id, codec, bps, bitrate), group in units.groupby(ROW, sort=True, observed=True):
        measured = float(group.measured_bps.mean())
        off = measured / bps - 1
        if abs(off) > limit:
            out.append((_scope(frame, run_id, codec, bitrate),
                        f"measured {measured / 1000:.3g} kbit/s is {abs(off):.0%} {'above' if off > 0 else 'below'} "
                        f"the nominal {bps / 1000:g} kbit/s (mean over {len(group)} utterances): the row's label "
                        "is not its bitrate"))
    return out


def same_output(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of bitrates of one codec in one run with identical measured bitrates and scores everywhere."""
    from svbench.report.check import codes_of

    ok = frame[(frame.status == "ok") & frame.metric.notna()]
    names = np.stack([codes_of(ok[c]) for c in ("utt_id", "metric", "key")], axis=1)
    numbers = ok[["measured_bps", "value"]].to_numpy(dtype=np.float64)
    out = []
    for (run_id, codec), group in ok.groupby(["run_id", "codec"], sort=True, observed=True).indices.items():
        rows = ok.iloc[group]
        by_sum: dict[tuple[int, float, float], list[tuple[int, str, np.ndarray]]] = {}
        for (bps, bitrate), pos in rows.groupby(["bps", "bitrate"], sort=True, observed=True).indices.items():
            pos = group[pos]
            pos = pos[np.lexsort(names[pos].T[::-1])]
            summary = (len(pos), float(np.nansum(numbers[pos, 0])), float(np.nansum(numbers[pos, 1])))
            by_sum.setdefault(summary, []).append((bps, bitrate, pos))  # equal tables have equal sums
        for candidates in by_sum.values():
            for i, (_, a, pa) in enumerate(candidates):
                for _, b, pb in candidates[i + 1:]:
                    if np.array_equal(names[pa], names[pb]) and np.array_equal(numbers[pa], numbers[pb],
                                                                                equal_nan=True):
                        out.append((_scope(frame, run_id, codec, f"{a}/{b}"),
                                    f"{a} and {b} gave the same measured bitrate and the same score for every key on "
                                    f"all {len(set(names[pa, 0]))} utterances: most likely the same decoded audio "
                                    "(a proxy: svbench keeps no hash of the decoded audio)"))
    return out


def delay_spread(frame: pd.DataFrame, limit_ms: float = DELAY_IQR_MS) -> list[tuple[str, str]]:
    units = _ok_units(frame)
    units = units[units.delay_ms.notna()]
    out = []
    for (run_id, codec, _bps, bitrate), group in units.groupby(ROW, sort=True, observed=True):
        if len(group) < DELAY_MIN_UTTERANCES:
            continue
        q1, median, q3 = np.percentile(group.delay_ms.to_numpy(), [25, 50, 75])
        if q3 - q1 > limit_ms:
            out.append((_scope(frame, run_id, codec, bitrate),
                        f"estimated delay varies across utterances: IQR {q3 - q1:.1f} ms (> {limit_ms:g} ms; "
                        f"median {median:.1f} ms over {len(group)} utterances): alignment may be off, and the "
                        "intrusive scores with it"))
    return out
