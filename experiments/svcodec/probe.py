"""How fast can the codec's encoder/decoder learn at all? Trains them *without* the quantizer on the recipe's
training data with a time-domain L1 loss, next to a linear frame transform (one strided conv over two
frames, one overlapping transposed conv), and reports the held-out SNR after N steps.

    python -m experiments.svcodec.probe [--steps 300] [--codec svcodec]

This is the diagnosis behind the `shortcut` model option (docs/svcodec.md). Seen on a 2-core CPU: the deep
causal conv stack alone stays near 0 dB (its output is a few % of the input's RMS) where the linear
transform reaches ~9 dB; both summed are still below 0 dB after 300 steps (the untrained deep path adds
error at first).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from svbench.cards import get_card
from svbench.neural import data
from svbench.neural.config import recipe_config
from svbench.neural.stacks import Shortcut, decoder, encoder, frame_transform


def snr_db(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10((x**2).sum() / ((x - y) ** 2).sum()))


def train(name: str, enc: torch.nn.Module, dec: torch.nn.Module, crops: data.Crops, held: torch.Tensor,
          steps: int, lr: float) -> None:
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr, betas=(0.8, 0.99))
    t0 = time.perf_counter()
    for step in range(steps):
        x = torch.from_numpy(crops.batch(8, 1234, step))[:, None]
        loss = (dec(enc(x)) - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        y = dec(enc(held))
    print(f"{name:28s} {sum(p.numel() for p in params):8d} params  held-out SNR {snr_db(held, y):6.2f} dB  "
          f"output/input RMS {float(y.std() / held.std()):.2f}  ({time.perf_counter() - t0:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--codec", default="svcodec")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = recipe_config(get_card("codecs", args.codec), "tiny")
    m, t = cfg.model, cfg.train
    work = Path(tempfile.mkdtemp(prefix="svbench-probe-"))
    clips = data.load_clips(data.compose(list(t.train_data), work / "train.csv"), m.sample_rate, held_out=t.held_out)
    valid_manifest = data.compose([t.valid_data], work / "valid.csv", per_speaker=t.valid_per_speaker,
                                  limit=t.valid_clips)  # the clips the build step validates on
    valid = data.load_clips(valid_manifest, m.sample_rate, t.valid_seconds, held_out=t.held_out)
    hop = m.hop
    n = int(t.valid_seconds * m.sample_rate) // hop * hop
    held = torch.from_numpy(np.stack([c[:n] for c in valid if len(c) >= n]))[:, None]
    crops = data.Crops(clips, int(t.segment_s * m.sample_rate) // hop * hop)

    def deep() -> tuple[torch.nn.Module, torch.nn.Module]:
        torch.manual_seed(0)
        return (encoder(m.channels, m.dim, m.strides, m.dilations, m.activation),
                decoder(m.channels, m.dim, m.strides, m.dilations, m.up_overlap, m.activation))

    def linear() -> tuple[torch.nn.Module, torch.nn.Module]:
        torch.manual_seed(0)
        return frame_transform(m.dim, hop)

    print(f"{args.steps} steps of batch 8 x {t.segment_s} s, time-domain L1, no quantizer, lr {t.lr}")
    train("deep conv stack", *deep(), crops, held, args.steps, t.lr)
    train("linear frame transform", *linear(), crops, held, args.steps, t.lr)
    (de, dd), (le, ld) = deep(), linear()
    train("deep + linear (shortcut)", Shortcut(de, le), Shortcut(dd, ld), crops, held, args.steps, t.lr)


if __name__ == "__main__":
    main()
