"""SVCODEC / SoundStream speed: inference real-time factor on one CPU thread, parameter count, and
training throughput of a recipe (steps/s, seconds of audio/s) on this machine.

    python benchmarks/svcodec_speed.py                       # inference, shipped/built checkpoints
    python benchmarks/svcodec_speed.py --train 60            # + 60 training steps per phase of tiny

Numbers depend on the machine and on what else runs on it: report the CPU and the load with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from svbench.adapters.svcodec import NeuralCodecAdapter
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.neural import data
from svbench.neural.config import recipe_config


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def inference(codec: str, seconds: float, repeats: int) -> dict:
    adapter = NeuralCodecAdapter(get_card("codecs", codec))
    if adapter.checkpoint_path() is None:
        return {"codec": codec, "skipped": "no checkpoint (run svbench build first)"}
    model = adapter.model
    x = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 8000))).astype(np.float32)
    row: dict = {"codec": codec, "checkpoint": str(adapter.checkpoint_path()),
                 "parameters": sum(p.numel() for p in model.parameters()),
                 "parameters_encoder": sum(p.numel() for p in model.encoder.parameters()),
                 "parameters_decoder": sum(p.numel() for p in model.decoder.parameters()),
                 "algorithmic_latency_ms": adapter.algorithmic_latency_ms}
    for kbps in ("1k", "4k"):
        b = Bitrate.parse(kbps)
        data_ = adapter.encode(x, b)
        t_enc = best_of(lambda b=b: adapter.encode(x, b), repeats)
        t_dec = best_of(lambda d=data_: adapter.decode(d), repeats)
        row[f"rtf_offline_{kbps}"] = round((t_enc + t_dec) / seconds, 5)
        row[f"x_realtime_offline_{kbps}"] = round(seconds / (t_enc + t_dec), 1)
    enc, dec = adapter.streaming_encoder(Bitrate.parse("3k")), adapter.streaming_decoder()
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)

    def stream() -> None:
        for f in frames:
            dec.push(enc.push(f))

    t = best_of(stream, 1)
    row["rtf_streaming_3k"] = round(t / (len(frames) * 0.02), 5)
    row["ms_per_20ms_frame_streaming"] = round(1000 * t / len(frames), 3)
    return row


def training(codec: str, recipe: str, steps: int) -> dict:
    from svbench.neural.train import Trainer

    cfg = recipe_config(get_card("codecs", codec), recipe)
    t = cfg.train
    out = Path(tempfile.mkdtemp(prefix="svbench-speed-"))
    try:
        manifest = data.compose(list(t.train_data), out / "train.csv")
        row: dict = {"codec": codec, "recipe": recipe, "batch_size": t.batch_size, "segment_s": t.segment_s,
                     "threads": t.threads}
        clips = data.load_clips(manifest, cfg.model.sample_rate, held_out=t.held_out)
        for phase, adv_start in (("reconstruction", 10**9), ("adversarial", 0)):
            phase_cfg = cfg.with_options(train={"adv_start": adv_start})
            trainer = Trainer(phase_cfg, out / phase, manifest, None, progress=False, log=lambda m: None)
            crops = data.Crops(clips, int(t.segment_s * trainer.model.sample_rate))
            trainer.model.train()
            for _ in range(3):  # warm-up
                trainer.train_step(crops)
            t0 = time.perf_counter()
            for _ in range(steps):
                trainer.train_step(crops)
            rate = steps / (time.perf_counter() - t0)
            row[f"steps_per_s_{phase}"] = round(rate, 2)
            row[f"audio_s_per_s_{phase}"] = round(rate * t.batch_size * t.segment_s, 1)
            row[f"examples_per_s_{phase}"] = round(rate * t.batch_size, 1)
        return row
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codecs", default="svcodec,soundstream")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train", type=int, default=0, help="also time this many training steps per phase")
    ap.add_argument("--recipe", default="tiny")
    ap.add_argument("-o", "--output", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    env = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
           "load_avg_1min": os.getloadavg()[0]}
    rows = []
    torch.set_num_threads(1)
    for codec in args.codecs.split(","):
        rows.append(inference(codec, args.seconds, args.repeats))
        print(json.dumps(rows[-1]))
    if args.train:
        for codec in args.codecs.split(","):
            rows.append(training(codec, args.recipe, args.train))
            print(json.dumps(rows[-1]))
    env["load_avg_1min_end"] = os.getloadavg()[0]
    if args.output:
        args.output.write_text(json.dumps({"environment": env, "results": rows}, indent=2))
    print(json.dumps(env))


if __name__ == "__main__":
    main()
