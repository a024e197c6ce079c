"""Speed and agreement of the paper's metric suite: svbench vs a plain serial script.

Scores the svcodec-demo set (../shared/data/svcodec-demo: decoded/<N codec>/<bitrate>/"N UTTID.wav" at
8 kHz against reference/org/.../UTTID.flac at 16 kHz) at an 8 kHz evaluation rate with the eight paper
metrics (PESQ, STOI, ViSQOL, DNSMOS, F0RMSE, SaRMSE, LSD, MCD), twice:

- plain: one process, one clip after another, calling the metric libraries directly (pesq, pystoi,
  visqol-python, the speechmos DNSMOS class, pyworld, pysptk, numpy), with the same reading, resampling
  (soxr VHQ) and delay alignment (svbench.align) the engine applies, and each library step done once
  per clip (the WORLD F0 analysis serves F0RMSE, SaRMSE and MCD);
- svbench: the engine's own unit of work (svbench.engine.evaluate: read, resample, align, score every
  metric card) over a pool of worker processes (default: every core).

It prints, per metric and in total: audio-seconds per CPU-second (plain), the largest difference between
the two sets of values (target 1e-6), then plain wall time, svbench wall time and the parallel limit
(plain library CPU seconds / cores) side by side, and the peak RSS of each svbench worker.

    .venv/bin/python benchmarks/metrics_bench.py [--workers N] [--limit N]

With ``--beyond`` it instead scores the metrics beyond the paper (wer, cer, spk-sim, plcmos; with
``--with-paper`` all of ``--metrics paper+asr``, so every model is loaded in each worker) on ``--limit``
clips spread over the demo's codecs, in svbench workers only: audio-seconds per CPU-second per metric
(the engine's per-metric CPU seconds in the workers; wer pays the recognizer for both, cer reuses its
transcripts) and the peak RSS of each worker. The demo references' transcripts (text.txt) feed wer/cer.

    .venv/bin/python benchmarks/metrics_bench.py --beyond --with-paper --limit 16 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from svbench import align, audio, engine  # noqa: E402
from svbench.executor import LocalExecutor, SerialExecutor  # noqa: E402
from svbench.metrics.base import load_metrics  # noqa: E402

DEMO = Path(os.environ.get("SVBENCH_SHARED", ROOT.parent / "shared")) / "data" / "svcodec-demo"
PAPER = ["pesq", "stoi", "visqol", "dnsmos", "f0rmse", "sarmse", "lsd", "mcd"]
BEYOND = ["wer", "cer", "spk-sim", "plcmos"]
EVAL_SR = 8000
WORLD_SR = 16000


# ---------------------------------------------------------------- the data


def demo_units(limit: int | None) -> tuple[Path, list[tuple[str, Path, Path]]]:
    """A manifest of the references and the (utt_id, reference, decoded) units."""
    refs = {p.stem: p for p in sorted((DEMO / "reference").rglob("*.flac"))}
    units = []
    for deg in sorted((DEMO / "decoded").glob("*/*/*.wav")):
        utt = deg.stem.split(" ", 1)[-1]
        if utt in refs:
            units.append((utt, refs[utt], deg))
    units = units[:limit] if limit else units
    manifest = Path(tempfile.mkdtemp(prefix="svbench-metrics-bench-")) / "demo.csv"
    used = sorted({u for u, _, _ in units})
    text = [(refs[u].parent / "text.txt").read_text().strip() if (refs[u].parent / "text.txt").is_file() else ""
            for u in used]
    pd.DataFrame({"id": used, "path": [str(refs[u]) for u in used], "text": text}).to_csv(manifest, index=False)
    return manifest, units


def aligned_pair(ref_path: Path, deg_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """What the engine hands the metrics: both at 8 kHz (soxr VHQ), codec delay removed."""
    ref = audio.resample(audio.check(audio.read(ref_path), ref_path), EVAL_SR).samples
    deg = audio.resample(audio.check(audio.read(deg_path), deg_path), EVAL_SR).samples
    found = align.estimate_delay(ref, deg, EVAL_SR)
    return align.apply(ref, deg, found.delay_samples)


# ---------------------------------------------------------------- plain serial script


class Plain:
    """The libraries called directly, models loaded once."""

    def __init__(self) -> None:
        import pysptk
        import pyworld
        import soxr
        from pesq import pesq
        from pystoi import stoi
        from speechmos import dnsmos
        from visqol import VisqolApi

        self.pesq, self.stoi, self.pyworld, self.pysptk, self.soxr = pesq, stoi, pyworld, pysptk, soxr
        self.visqol = VisqolApi()
        self.visqol.create(mode="speech", use_lattice_model=True)
        root = os.path.dirname(dnsmos.__file__)
        self.dnsmos = dnsmos.DNSMOS(os.path.join(root, "dnsmos_models", "sig_bak_ovr.onnx"),
                                    os.path.join(root, "dnsmos_models", "model_v8.onnx"))
        self.cpu: dict[str, float] = defaultdict(float)

    def timed(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.process_time()
        out = fn(*args, **kwargs)
        self.cpu[what] += time.process_time() - t0
        return out

    def score(self, r: np.ndarray, d: np.ndarray) -> dict[str, float]:
        pw, out = self.pyworld, {}
        out["pesq_nb"] = self.timed("pesq", self.pesq, EVAL_SR, r, d, "nb")
        out["stoi"] = self.timed("stoi", self.stoi, r, d, EVAL_SR)
        r16, d16 = (self.timed("resample", self.soxr.resample, x, EVAL_SR, WORLD_SR, quality="VHQ") for x in (r, d))
        out["visqol_from8k"] = self.timed("visqol", self.visqol.measure_from_arrays, r16.astype(np.float64),
                                          d16.astype(np.float64), WORLD_SR).moslqo
        dns = self.timed("dnsmos", self.dnsmos, d16.astype(np.float64), WORLD_SR, False)
        for k in ("sig", "bak", "ovrl", "p808"):
            out[f"dnsmos_{k}_from8k"] = dns[f"{k}_mos"]

        def f0(x):  # type: ignore[no-untyped-def]
            f, t = pw.dio(x, WORLD_SR, f0_floor=71.0, f0_ceil=800.0, frame_period=5.0)
            return pw.stonemask(x, f, t, WORLD_SR), t

        r64, d64 = r16.astype(np.float64), d16.astype(np.float64)
        (fr, tr), (fd, td) = self.timed("f0rmse", f0, r64), self.timed("f0rmse", f0, d64)
        n = min(len(fr), len(fd))
        both = (fr[:n] > 0) & (fd[:n] > 0)
        out["f0rmse_hz"] = float(np.sqrt(np.mean((fr[:n][both] - fd[:n][both]) ** 2)))
        out["f0rmse_vde"] = float(np.mean((fr[:n] > 0) != (fd[:n] > 0)))

        ap_r = self.timed("sarmse", pw.d4c, r64, fr, tr, WORLD_SR, fft_size=1024)
        ap_d = self.timed("sarmse", pw.d4c, d64, fd, td, WORLD_SR, fft_size=1024)
        band = np.arange(ap_r.shape[1]) * (WORLD_SR / 2) / (ap_r.shape[1] - 1) < EVAL_SR / 2
        a = np.maximum(20 * np.log10(ap_r[:n][both][:, band]), -60.0)
        b = np.maximum(20 * np.log10(ap_d[:n][both][:, band]), -60.0)
        out["sarmse_db_from8k"] = float(np.sqrt(np.mean((a - b) ** 2)))

        def mcep(x, f, t):  # type: ignore[no-untyped-def]
            return self.pysptk.sp2mc(pw.cheaptrick(x, f, t, WORLD_SR), 24, self.pysptk.util.mcepalpha(WORLD_SR))

        mr, md = self.timed("mcd", mcep, r64, fr, tr), self.timed("mcd", mcep, d64, fd, td)
        m = min(len(mr), len(md))
        out["mcd_db_from8k"] = float(np.mean(10 / np.log(10) * np.sqrt(2 * np.sum((mr[:m, 1:] - md[:m, 1:]) ** 2, 1))))

        def lsd(x, y):  # type: ignore[no-untyped-def]
            frame, hop = 256, 64  # 32 ms, 8 ms at 8 kHz
            w = np.hanning(frame + 1)[:-1]
            spec = [np.abs(np.fft.rfft(np.lib.stride_tricks.sliding_window_view(z.astype(np.float64), frame)[::hop] * w,
                                       axis=1)) ** 2 / np.sum(w**2) for z in (x, y)]
            k = min(len(spec[0]), len(spec[1]))
            diff = 10 * np.log10(np.maximum(spec[0][:k], 1e-10) / np.maximum(spec[1][:k], 1e-10))
            return float(np.mean(np.sqrt(np.mean(diff**2, axis=1))))

        out["lsd_db"] = self.timed("lsd", lsd, r, d)
        return {k: float(v) for k, v in out.items()}


# ---------------------------------------------------------------- svbench


def evaluate_with_rss(task: engine.Task):  # type: ignore[no-untyped-def]
    t0 = time.process_time()
    result = engine.evaluate(task)
    return result, os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.process_time() - t0


def svbench_tasks(manifest: Path, units: list[tuple[str, Path, Path]], workspace: Path,
                  names: list[str] = PAPER) -> list[engine.Task]:
    from svbench import manifest as manifest_mod

    metric_cards = tuple(m.card for m in load_metrics(names))
    ctx = engine.WorkerContext(metric_cards, str(workspace / "cache"), EVAL_SR, "envelope", False)
    wanted = {str(d) for _, _, d in units}
    tasks = []
    codec_dirs = tuple(str(p) for p in sorted({d.parent.parent for _, _, d in units}))
    spec = engine.RunSpec(dataset=str(manifest), codecs=(engine.PRECOMPUTED,), decoded=codec_dirs,
                          metrics=tuple(names), eval_sr=EVAL_SR, skip_missing=True, workspace=str(workspace))
    plan = engine.plan(spec, manifest_mod.load(manifest), ctx)
    tasks += [t for t in plan.tasks if t.decoded_path in wanted]
    assert len(tasks) == len(units), (len(tasks), len(units))
    return tasks


# ---------------------------------------------------------------- beyond the paper


def beyond(args: argparse.Namespace) -> int:
    """wer, cer, spk-sim, plcmos (optionally with the paper's eight) in svbench workers: speed and memory."""
    names = PAPER + BEYOND if args.with_paper else BEYOND
    manifest, units = demo_units(None)
    if args.limit:
        units = units[:: max(1, len(units) // args.limit)][: args.limit]  # spread over codecs and bitrates
    print(f"{len(units)} decoded clips, evaluation at {EVAL_SR} Hz, metrics: {', '.join(names)}")
    print(f"machine: {os.cpu_count()} cores; svbench workers: {args.workers}\n")
    tasks = svbench_tasks(manifest, units, manifest.parent / "work", names)
    executor = SerialExecutor() if args.workers == 1 else LocalExecutor(args.workers)
    cpu: dict[str, float] = defaultdict(float)
    rss: dict[int, float] = {}
    audio_s, undefined, unit_cpu, load_before, t_wall = 0.0, [], 0.0, os.getloadavg()[0], time.perf_counter()
    for result, pid, peak, seconds in executor.map_unordered(evaluate_with_rss, tasks):
        rss[pid] = max(rss.get(pid, 0.0), peak)
        unit_cpu += seconds
        if result.status != "ok":
            undefined.append(f"{result.deg_path}: {result.error}")
            continue
        audio_s += result.compared_s or 0.0
        seen = set()
        for metric, key, value, reason, _wall, metric_cpu in result.scores:
            if metric not in seen:
                cpu[metric] += metric_cpu
                seen.add(metric)
            if value is None:
                undefined.append(f"{result.deg_path}: {metric}/{key}: {reason}")
    wall = time.perf_counter() - t_wall
    print(f"{'metric':10} {'CPU s':>8} {'audio-s/CPU-s':>14}")
    for name in names:
        print(f"{name:10} {cpu[name]:8.2f} {audio_s / cpu[name]:14.1f}")
    print(f"\naudio scored: {audio_s:.1f} s (8 kHz, aligned spans); units' CPU in the workers {unit_cpu:.1f} s "
          f"(reading, resampling, alignment, every metric); wall {wall:.1f} s; load average "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("(wer's seconds include PocketSphinx on both reference and decoded; cer reuses those transcripts)")
    print("peak RSS per svbench worker (MiB), every model above loaded: "
          + ", ".join(f"pid {p}: {m:.0f}" for p, m in sorted(rss.items())))
    if undefined:
        print(f"\n{len(undefined)} values not defined:")
        for line in undefined[:20]:
            print("  " + line)
    return 0


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N decoded clips")
    parser.add_argument("--beyond", action="store_true", help="wer, cer, spk-sim, plcmos instead (module docstring)")
    parser.add_argument("--with-paper", action="store_true", help="with --beyond: the paper's eight as well")
    args = parser.parse_args()
    if not DEMO.is_dir():
        print(f"needs {DEMO}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.beyond:
        return beyond(args)
    manifest, units = demo_units(args.limit)
    audio_s = 0.0

    print(f"{len(units)} decoded clips, evaluation at {EVAL_SR} Hz, metrics: {', '.join(PAPER)}")
    print(f"machine: {os.cpu_count()} cores; svbench workers: {args.workers}\n")

    # svbench first, so its forked workers do not inherit the plain script's libraries and models
    workspace = manifest.parent / "work"
    tasks = svbench_tasks(manifest, units, workspace)
    executor = SerialExecutor() if args.workers == 1 else LocalExecutor(args.workers)
    t_wall = time.perf_counter()
    rss: dict[int, float] = {}
    results = []
    sv_unit_cpu = 0.0
    load_before = os.getloadavg()[0]
    for result, pid, peak, cpu in executor.map_unordered(evaluate_with_rss, tasks):
        results.append(result)
        rss[pid] = max(rss.get(pid, 0.0), peak)
        sv_unit_cpu += cpu
    sv_wall = time.perf_counter() - t_wall
    load_after = os.getloadavg()[0]

    # plain serial script
    t_wall = time.perf_counter()
    t_cpu = time.process_time()
    plain = Plain()
    t_setup = time.process_time() - t_cpu
    plain_values: dict[str, dict[str, float]] = {}
    for _utt, ref_path, deg_path in units:
        r, d = aligned_pair(ref_path, deg_path)
        audio_s += len(d) / EVAL_SR
        plain_values[str(deg_path)] = plain.score(r, d)
    plain_wall = time.perf_counter() - t_wall
    plain_total_cpu = time.process_time() - t_cpu
    plain_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # agreement and per-metric speed
    diff: dict[str, float] = defaultdict(float)
    sv_cpu: dict[str, float] = defaultdict(float)
    problems = []
    for r in results:
        if r.status != "ok":
            problems.append(f"{r.deg_path}: {r.error}")
            continue
        mine = plain_values[r.deg_path]
        seen = set()
        for metric, key, value, reason, _wall, cpu in r.scores:
            if metric not in seen:
                sv_cpu[metric] += cpu
                seen.add(metric)
            if value is None:
                problems.append(f"{r.deg_path}: {metric}/{key}: {reason}")
                continue
            diff[key] = max(diff[key], abs(value - mine[key]))
    lib_cpu = sum(plain.cpu.values())
    limit = lib_cpu / args.workers

    print(f"{'metric':10} {'plain CPU s':>12} {'audio-s/CPU-s':>14} {'svbench s':>10} {'audio-s/s':>10}  max |diff|")
    per_metric_keys = {"pesq": ["pesq_nb"], "stoi": ["stoi"], "visqol": ["visqol_from8k"],
                       "dnsmos": [f"dnsmos_{k}_from8k" for k in ("sig", "bak", "ovrl", "p808")],
                       "f0rmse": ["f0rmse_hz", "f0rmse_vde"], "sarmse": ["sarmse_db_from8k"], "lsd": ["lsd_db"],
                       "mcd": ["mcd_db_from8k"]}
    for name in PAPER:
        c, s = plain.cpu[name], sv_cpu[name]
        worst = max(diff[k] for k in per_metric_keys[name])
        print(f"{name:10} {c:12.2f} {audio_s / c:14.1f} {s:10.2f} {audio_s / s:10.1f}  {worst:.2e}")
    print(f"{'resample':10} {plain.cpu['resample']:12.2f}")
    sv_total = sum(sv_cpu.values())
    print(f"{'total':10} {lib_cpu:12.2f} {audio_s / lib_cpu:14.1f} {sv_total:10.2f} {audio_s / sv_total:10.1f}  "
          f"{max(diff.values()):.2e}")
    print(f"\naudio scored: {audio_s:.1f} s in {len(units)} clips; plain setup (imports, models): {t_setup:.1f} CPU s; "
          f"plain process CPU in total {plain_total_cpu:.1f} s")
    print("(svbench per-metric seconds are the engine's timings inside the workers; the first metric of a unit "
          "pays the shared 16 kHz resampling and WORLD analysis it triggers)\n")
    print(f"{'plain wall s':>14} {'svbench wall s':>15} {'parallel limit s':>17} {'svbench / limit':>16}")
    print(f"{plain_wall:14.1f} {sv_wall:15.1f} {limit:17.1f} {sv_wall / limit:16.2f}")
    print(f"(parallel limit = plain library CPU seconds {lib_cpu:.1f} / {args.workers} workers)")
    print(f"CPU seconds: plain libraries {lib_cpu:.1f}, plain process {plain_total_cpu:.1f}; svbench units in the "
          f"workers {sv_unit_cpu:.1f} (reading, resampling, alignment and every metric; worker start-up excluded)")
    print(f"load average (1 min) around the svbench run: {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} "
          "cores: other jobs on the machine stretch wall times\n")
    print("peak RSS per svbench worker (MiB): " + ", ".join(f"pid {p}: {m:.0f}" for p, m in sorted(rss.items())))
    print(f"peak RSS of the plain script (MiB): {plain_rss:.0f}")
    if problems:
        print(f"\n{len(problems)} values not compared:")
        for p in problems[:20]:
            print("  " + p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
