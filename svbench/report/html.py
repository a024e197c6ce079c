"""``svbench report html``: a self-contained static listening page (Jinja2).

The folder holds ``index.html``, the included tables (also as CSV) and figures (PNG), and ``audio/``
with a WAV file per clip, all linked relatively, so the folder can be published as it is. The grid has a
row per utterance (the reference first) and a column per codec x bitrate, with each clip's metric values.

Audio comes from what the run left behind, nothing is re-encoded: the reference file (re-written as
16-bit WAV), a precomputed codec's decoded file, or the decoded-audio cache of the workspace, whose key is
rebuilt from the store (the codec identity in the run config, the bitrate, the reference at the codec's
rate). A clip whose cache entry is gone (another workspace, a cleaned cache) says so instead of playing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from svbench import audio, cache
from svbench.cards import get_card
from svbench.report import aggregate, figures, render, tidy
from svbench.report import spec as spec_mod

TEMPLATES = Path(__file__).resolve().parent / "templates"


def write(spec: spec_mod.Spec, frame: pd.DataFrame, info: pd.DataFrame, out: Path, common: bool,
          overlay: Any, store: Path) -> list[Path]:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    included = [spec_mod.load(spec_mod.find(n)) for n in spec.include]
    tables, images, written = [], [], []
    for one in included:
        result = aggregate.aggregate(frame, info, one, common)
        if one.kind == "figure":
            written += figures.write(result, out, ("png",), overlay)
            images.append({"title": one.title, "src": f"{one.name}.png"})
        elif one.kind == "table":
            written.append(render.write_csv(result, out / f"{one.name}.csv", overlay))
            tables.append(_table(result, one))
    grid = _grid(spec, frame, info, out, store)
    written += grid.pop("files")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("page.html.j2").render(title=spec.title, caption=spec.caption, tables=tables,
                                                   images=images, method=aggregate.CI_METHOD, **grid)
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return [index, *written]


def _table(result: aggregate.Result, spec: spec_mod.Spec) -> dict[str, Any]:
    labels = render._row_labels(result)
    header = list(labels.columns) + [render._header(c) for c in result.columns]
    columns = [render.texts(result, c) for c in result.columns]
    rows = [list(labels.iloc[i]) + [col[i] for col in columns] for i in range(len(result.rows))]
    return {"title": spec.title, "header": header, "rows": rows, "notes": render.footer(result)[1:],
            "csv": f"{spec.name}.csv"}


def _grid(spec: spec_mod.Spec, frame: pd.DataFrame, info: pd.DataFrame, out: Path, store: Path) -> dict[str, Any]:
    """Utterances x (reference, codec@bitrate): audio files written into ``out/audio``, metric values."""
    units = tidy.units(store, info.run_id.tolist())
    if spec.codecs:
        units = units[units.codec.isin(spec.codecs)]
    latest = {r: i for i, r in enumerate(info.sort_values(["updated", "created"]).run_id)}
    units = units.assign(rank=units.run_id.map(latest)).sort_values("rank").drop_duplicates(
        ["utt_id", "codec", "bitrate"], keep="last")
    order = {c: i for i, c in enumerate(spec.codecs)}
    points = (units[["codec", "bitrate", "nominal_bps"]].drop_duplicates(["codec", "bitrate"])
              .assign(o=lambda t: t.codec.map(order).fillna(len(order)))
              .sort_values(["o", "codec", "nominal_bps"]))
    ok_count = units[units.status == "ok"].groupby("utt_id").size()
    utts = sorted(ok_count.index, key=lambda u: (-ok_count[u], u))[: spec.clips]
    values = _values(frame[frame.utt_id.isin(utts).to_numpy()], spec)  # the grid's utterances only
    config = dict(zip(info.run_id, info.config, strict=True))
    cache_root = store.parent / "cache"
    files: list[Path] = []
    rows = []
    for utt in utts:
        mine = units[units.utt_id == utt].set_index(["codec", "bitrate"])
        first = mine.iloc[0]
        ref_rel = f"audio/{_safe(utt)}/reference.wav"
        ref = _write(out / ref_rel, lambda p=first.ref_path: _reference(p))
        files += [out / ref_rel] if ref is None else []
        cells = []
        for point in points.itertuples():
            key = (point.codec, point.bitrate)
            if key not in mine.index:
                cells.append({"missing": "not in these runs"})
                continue
            unit = mine.loc[key]
            if unit.status != "ok":
                cells.append({"missing": f"failed ({unit.stage}): {unit.error}"})
                continue
            rel = f"audio/{_safe(utt)}/{_safe(point.codec)}@{_safe(point.bitrate)}.wav"
            why = _write(out / rel, lambda u=unit, k=key: _decoded(u, k[0], k[1], config, cache_root))
            files += [out / rel] if why is None else []
            cells.append({"src": rel if why is None else None, "missing": why,
                          "values": values.get((unit.run_id, utt, *key), [])})
        rows.append({"utt": utt, "ref": ref_rel if ref is None else None, "ref_missing": ref, "cells": cells})
    heads = [f"{p.codec} @ {p.bitrate}" for p in points.itertuples()]
    return {"heads": heads, "rows": rows, "files": files}


def _values(frame: pd.DataFrame, spec: spec_mod.Spec) -> dict[tuple[str, ...], list[str]]:
    """(run, utt, codec, bitrate) -> ["PESQ 2.71", ...] for the spec's columns (every key when none)."""
    scored = frame[frame.value.notna()]
    if spec.columns:
        import fnmatch

        keep = np.zeros(len(scored), dtype=bool)
        for col in spec.columns:
            keys = [k for k in scored.key.cat.categories if fnmatch.fnmatchcase(k, col.key)]
            keep |= ((scored.metric == col.metric) & scored.key.isin(keys)).to_numpy()
        scored = scored[keep]
    names = {c.metric: c.name for c in spec.columns}
    out: dict[tuple[str, ...], list[str]] = {}
    for r in scored.itertuples(index=False):
        label = names.get(r.metric, r.key)
        out.setdefault((r.run_id, r.utt_id, r.codec, r.bitrate), []).append(f"{label} {r.value:.2f}")
    return out


def _reference(path: str | None) -> tuple[np.ndarray, int] | str:
    if not isinstance(path, str) or not path:
        return "no reference file stored for this utterance"
    clip = audio.read(path)
    return clip.samples, clip.sr


def _decoded(unit: Any, codec: str, bitrate: str, config: dict[str, Any], root: Path) -> tuple[np.ndarray, int] | str:
    """The unit's decoded audio (samples, rate), or why it is not available."""
    if isinstance(unit.deg_path, str) and unit.deg_path:
        clip = audio.read(unit.deg_path)
        return clip.samples, clip.sr
    if not isinstance(unit.ref_path, str) or not unit.ref_path:
        return "no reference file stored, so the cache key cannot be made"
    identity = config.get(unit.run_id, {}).get("codec_cards", {}).get(codec)
    try:
        rate = int(get_card("codecs", codec).data["sample_rate"])
    except (KeyError, ValueError):
        return f"no codec card {codec!r} here to tell its sample rate"
    codec_in = audio.resample(audio.check(audio.read(unit.ref_path), unit.ref_path), rate)
    hit = cache.DecodedCache(root).get(cache.key(str(identity), bitrate, str(rate), codec_in.samples.tobytes()))
    if hit is None:
        return f"decoded audio not in {root} (cleaned, or run elsewhere): run the same command again to fill it"
    return hit[1], rate


def _write(path: Path, make: Any) -> str | None:
    """Write a 16-bit WAV from ``make()``; None when written, else the reason it could not be."""
    try:
        got = make()
    except (audio.AudioError, OSError, ValueError) as err:
        return f"unreadable: {err}"
    if isinstance(got, str):
        return got
    samples, rate = got
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16")
    return None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))
