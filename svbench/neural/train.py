"""The training loop shared by SVCODEC and SoundStream recipes.

One process on CPU, or one process per GPU under ``torchrun`` (PyTorch DDP; bf16 autocast on GPU).
Everything random is drawn from generators seeded by (seed, step, rank), so a run killed and resumed
from ``last.pt`` continues exactly where the uninterrupted run would have been.
"""

from __future__ import annotations

import csv
import os
import platform
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import distributed as dist

from svbench.neural import checkpoint, data, losses
from svbench.neural.discriminators import Discriminators
from svbench.neural.model import MODEL_DEFAULTS, NeuralCodec, config_hash, merge

TRAIN_DEFAULTS: dict[str, Any] = {
    "seed": 1234,
    "steps": 1000,
    "batch_size": 8,
    "segment_s": 1.0,
    "lr": 1e-3,
    "lr_d": 1e-3,
    "betas": [0.8, 0.99],
    "lr_decay": 0.9999,  # per step, exponential
    "grad_clip": 10.0,
    "bitrate_sampling": "balanced",  # balanced | dropout | full
    "dropout_p": 1.0,  # dropout: share of examples whose n_q is drawn (others use all quantizers)
    "recon": "mrstft",  # mrstft | mel
    "stft_ffts": [128, 256, 512, 1024],
    "discriminators": ["mpd", "msd"],
    "disc_channels": 16,
    "adv_loss": "lsgan",  # lsgan | hinge
    "adv_start": 0,  # step at which adversarial training starts
    "wave_lowpass_hz": 0.0,  # > 0: the waveform L1 (w_wave) on the band below this only
    "w_recon": 1.0, "w_wave": 0.0, "w_mel": 0.0, "w_adv": 1.0, "w_fm": 2.0,
    "w_commit": 1.0, "w_codebook": 1.0, "w_usage": 0.1,
    "reseed_every": 100, "reseed_threshold": 0.01,
    "log_every": 10, "valid_every": 500, "ckpt_every": 250,
    "valid_clips": 8, "valid_seconds": 4.0, "valid_n_q": [2, 4, 6, 8],
    "threads": 2,
    "precision": "auto",  # auto (bf16 autocast on GPU, fp32 on CPU) | bf16 | fp32; the quantizer always runs in fp32
}

LOG_FIELDS = ["step", "time_s", "loss_g", "recon", "wave", "mel", "adv", "fm", "commit", "codebook", "usage", "loss_d",
              "lr", "codebook_use"]


def resume_key(cfg: dict[str, Any]) -> str:
    """What must match to resume: everything except the number of steps, the logging cadence, the precision and
    thread count (they change rounding, not the recipe) and the start of the adversarial phase (checked
    separately: it may move only while neither old nor new start is reached). An option newer than the state
    takes its default, as when a checkpoint is loaded."""
    skip = ("steps", "log_every", "valid_every", "ckpt_every", "adv_start", "precision", "threads")
    train = {k: v for k, v in {**TRAIN_DEFAULTS, **cfg["train"]}.items() if k not in skip}
    return config_hash({"model": merge(MODEL_DEFAULTS, cfg["model"]), "train": train})


def _sample_n_q(cfg: dict[str, Any], batch: int, n_max: int, rng: np.random.Generator) -> torch.Tensor:
    mode = cfg["bitrate_sampling"]
    if mode == "balanced":  # every bitrate equally often within each batch (a random rotation of 1..N)
        n = 1 + (np.arange(batch) + rng.integers(n_max)) % n_max
    elif mode == "dropout":  # SoundStream quantizer dropout: n_q ~ U{1..N} for a share p of the examples
        n = np.where(rng.random(batch) < cfg["dropout_p"], rng.integers(1, n_max + 1, batch), n_max)
    elif mode == "full":
        n = np.full(batch, n_max)
    else:
        raise ValueError(f"unknown bitrate_sampling {mode!r} (balanced | dropout | full)")
    return torch.as_tensor(n, dtype=torch.long)


class Trainer:
    def __init__(self, cfg: dict[str, Any], out: Path, train_manifest: Path, valid_manifest: Path | None,
                 log: Any = print, progress: bool = True):
        self.cfg = {**cfg, "train": {**TRAIN_DEFAULTS, **cfg["train"]}}
        self.t = self.cfg["train"]
        self.out, self.log, self.progress = Path(out), log, progress
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        local = int(os.environ.get("LOCAL_RANK", 0))
        self.device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        else:
            torch.set_num_threads(int(self.t["threads"]))
        self._autocast()  # an unknown precision is refused before any work
        torch.manual_seed(self.t["seed"])
        self.model = NeuralCodec(self.cfg["model"]).to(self.device)
        self.model.quantizer.usage_loss = bool(self.t["w_usage"])  # soundstream's recipes give it no weight
        self.disc = Discriminators(self.t["discriminators"], self.t["disc_channels"]).to(self.device)
        self.opt_g = torch.optim.Adam(self.model.parameters(), self.t["lr"], betas=tuple(self.t["betas"]))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), self.t["lr_d"], betas=tuple(self.t["betas"]))
        self.step = 0
        self.train_manifest, self.valid_manifest = Path(train_manifest), valid_manifest
        self.out.mkdir(parents=True, exist_ok=True)
        self._resume()
        self.gen, self.dis = self.model, self.disc
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.gen = DDP(self.model, device_ids=ids, find_unused_parameters=True)
            self.dis = DDP(self.disc, device_ids=ids)

    # ------------------------------------------------------------ state
    def _resume(self) -> None:
        path = self.out / "last.pt"
        if not path.is_file():
            return
        state = checkpoint.load_state(path)
        if resume_key(state["config"]) != resume_key(self.cfg):
            raise checkpoint.CheckpointError(
                f"{path}: a checkpoint of another configuration (recipe {state['config'].get('recipe')!r}); "
                f"refusing to resume. Use another --out folder, or delete it to start over.")
        old_adv = int(state["config"]["train"].get("adv_start", 0))
        if old_adv != self.t["adv_start"] and min(old_adv, self.t["adv_start"]) < int(state["step"]):
            raise checkpoint.CheckpointError(
                f"{path}: adv_start changed from {old_adv} to {self.t['adv_start']} after step "
                f"{min(old_adv, self.t['adv_start'])}, which this run has passed (step {state['step']}); "
                "refusing to resume")
        self.model.load_state_dict(state["model"])
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        for name in ("train_log.csv", "valid.csv"):  # rows written after that checkpoint will be written again
            _truncate(self.out / name, self.step)
        self.log(f"resuming {self.cfg['codec']}/{self.cfg['recipe']} from step {self.step} ({path})")

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "config": self.cfg, "config_hash": config_hash(self.cfg),
                "resume_key": resume_key(self.cfg), "model": self.model.state_dict(),
                "disc": self.disc.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def save(self) -> None:
        if self.rank:
            return
        checkpoint.save_state(self.out / "last.pt", self.state())
        info = {"step": self.step, "seed": self.t["seed"], "train_manifest": str(self.train_manifest),
                "train_manifest_sha256": self.data_hash, "torch": torch.__version__,
                "python": platform.python_version(), "threads": self.t["threads"], "world_size": self.world,
                "parameters": sum(p.numel() for p in self.model.parameters())}
        checkpoint.export(self.model, self.cfg, self.out, info)

    # ------------------------------------------------------------ one step
    def _lr(self) -> float:
        return self.t["lr"] * self.t["lr_decay"] ** self.step

    def _autocast(self) -> Any:
        precision = self.t["precision"]
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        if precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if precision != "fp32":
            raise ValueError(f"unknown precision {precision!r} (auto | bf16 | fp32)")
        return nullcontext()

    def train_step(self, crops: data.Crops) -> dict[str, float]:
        t, step = self.t, self.step
        rng = np.random.default_rng([t["seed"], step, self.rank, 1])
        x = torch.from_numpy(crops.batch(t["batch_size"], t["seed"], step, self.rank)).to(self.device)[:, None]
        n_q = _sample_n_q(t, x.shape[0], self.model.n_q, rng).to(self.device)
        for group in self.opt_g.param_groups:
            group["lr"] = self._lr()
        for group in self.opt_d.param_groups:
            group["lr"] = t["lr_d"] * t["lr_decay"] ** step
        amp = self._autocast()
        with amp:
            y, _, qloss = self.gen(x, n_q)
        y, xs = y.float().squeeze(1), x.squeeze(1)
        if t["recon"] == "mel":
            recon = losses.multi_scale_mel(y, xs, self.model.sample_rate, t["stft_ffts"])
        else:
            recon = losses.multi_resolution_stft(y, xs, t["stft_ffts"])
        row: dict[str, float] = {"recon": recon.item()}
        total = t["w_recon"] * recon
        if t["w_wave"]:  # time-domain L1: pins the phase that the magnitude losses leave free
            wave = losses.waveform_l1(y, xs, self.model.sample_rate, t["wave_lowpass_hz"])
            total = total + t["w_wave"] * wave
            row["wave"] = wave.item()
        if t["w_mel"]:  # log-mel envelope over 32 ms frames (what a recognizer's features see)
            mel = losses.log_mel_l1(y, xs, self.model.sample_rate)
            total = total + t["w_mel"] * mel
            row["mel"] = mel.item()
        for k in ("commit", "codebook", "usage"):
            if k in qloss and t[f"w_{k}"]:
                total = total + t[f"w_{k}"] * qloss[k]
                row[k] = qloss[k].item()
        if step >= t["adv_start"]:
            with amp:
                d_real, d_fake = self.dis(x), self.dis(y.detach()[:, None])
            loss_d = losses.d_loss(_fp32(d_real), _fp32(d_fake), t["adv_loss"])
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            torch.nn.utils.clip_grad_norm_(self.disc.parameters(), t["grad_clip"])
            self.opt_d.step()
            with amp:
                d_real, d_fake = self.dis(x), self.dis(y[:, None])
            d_real, d_fake = _fp32(d_real), _fp32(d_fake)
            adv, fm = losses.g_loss(d_fake, t["adv_loss"]), losses.feature_matching(d_real, d_fake)
            total = total + t["w_adv"] * adv + t["w_fm"] * fm
            row.update(adv=adv.item(), fm=fm.item(), loss_d=loss_d.item())
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), t["grad_clip"])
        self.opt_g.step()
        self.step += 1
        if t["reseed_every"] and self.step % t["reseed_every"] == 0:
            gen = torch.Generator().manual_seed(int(t["seed"]) * 1_000_003 + self.step)
            self.model.quantizer.reseed_dead(t["reseed_threshold"], gen)
            if self.world > 1:
                for buf in self.model.quantizer.state_dict().values():
                    dist.broadcast(buf, 0)
        row.update(loss_g=total.item(), lr=self._lr())
        return row

    # ------------------------------------------------------------ validation
    def validate(self, clips: list[np.ndarray]) -> list[dict[str, float]]:
        from svbench.metrics.base import MetricUndefined, load_metrics

        metrics = load_metrics(["pesq", "stoi"])
        model = self.model.eval()
        rows = []
        with torch.no_grad():
            for n_q in self.t["valid_n_q"]:
                scores: dict[str, list[float]] = {}
                for clip in clips:
                    y = model.to("cpu").decode_audio(model.encode_audio(clip, n_q))[: len(clip)]
                    for metric in metrics:
                        try:
                            for k, v in metric(clip, y, model.sample_rate).items():
                                scores.setdefault(k, []).append(v)
                        except MetricUndefined:
                            pass
                rows.append({"step": self.step, "n_q": n_q, "kbps": model.kbps(n_q),
                             **{k: float(np.mean(v)) for k, v in scores.items()}})
        self.model.to(self.device).train()
        return rows

    # ------------------------------------------------------------ the loop
    def run(self, steps: int | None = None) -> Path:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        t = self.t
        total = int(steps if steps is not None else t["steps"])
        sr = self.model.sample_rate
        self.data_hash = data.manifest_hash(self.train_manifest)
        crops = data.Crops(data.load_clips(self.train_manifest, sr), int(t["segment_s"] * sr) // self.model.hop
                           * self.model.hop)
        valid = (data.load_clips(Path(self.valid_manifest), sr, t["valid_seconds"])[: t["valid_clips"]]
                 if self.valid_manifest and self.rank == 0 else [])
        writer = SummaryWriter(str(self.out / "tensorboard")) if self.rank == 0 else None
        log_path, valid_path = self.out / "train_log.csv", self.out / "valid.csv"
        self.model.train()
        bar = tqdm(total=total, initial=self.step, disable=not self.progress or self.rank != 0, unit="step",
                   desc=f"{self.cfg['codec']}/{self.cfg['recipe']}")
        t0, acc, first = time.perf_counter(), {}, self.step
        while self.step < total:
            row = self.train_step(crops)
            for k, v in row.items():
                acc.setdefault(k, []).append(v)
            bar.update(1)
            if self.rank == 0 and (self.step % t["log_every"] == 0 or self.step == total):
                mean = {k: float(np.mean(v)) for k, v in acc.items()}
                mean["codebook_use"] = float(np.mean(self.model.quantizer.usage_stats()))
                mean["time_s"] = round(time.perf_counter() - t0, 2)
                for k, v in mean.items():
                    writer.add_scalar(f"train/{k}", v, self.step)
                _append(log_path, {"step": self.step, **mean}, LOG_FIELDS)
                bar.set_postfix(loss=f"{mean['loss_g']:.3f}", recon=f"{mean['recon']:.3f}")
                acc = {}
            if valid and (self.step % t["valid_every"] == 0 or self.step == total):
                rows = self.validate(valid)
                for r in rows:
                    _append(valid_path, r, ["step", "n_q", "kbps", "pesq_nb", "stoi"])
                    for k in ("pesq_nb", "stoi"):
                        if k in r:
                            writer.add_scalar(f"valid/{k}@{r['kbps']:g}kbps", r[k], self.step)
                bar.write(f"step {self.step} validation: " + "; ".join(
                    f"{r['kbps']:g}k PESQ-NB {r.get('pesq_nb', np.nan):.2f} STOI {r.get('stoi', np.nan):.3f}"
                    for r in rows))
            if self.step % t["ckpt_every"] == 0 or self.step == total:
                self.save()
        bar.close()
        if self.step == first:  # nothing left to train (e.g. resumed at the final step): export anyway
            self.save()
        if writer:
            writer.close()
        elapsed = time.perf_counter() - t0
        if self.step > first and self.rank == 0:
            speed = (self.step - first) / elapsed
            self.log(f"{self.step - first} steps in {elapsed:.0f} s: {speed:.2f} steps/s, "
                     f"{speed * t['batch_size'] * self.world * t['segment_s']:.1f} s of audio/s")
        return self.out / "model.safetensors"


def _fp32(outputs: list) -> list:
    """Discriminator outputs [(logits, [features])] in fp32, so the GAN losses are not summed in bf16."""
    return [(logits.float(), [f.float() for f in feats]) for logits, feats in outputs]


def _append(path: Path, row: dict[str, Any], fields: list[str]) -> None:
    new = not path.exists()
    if not new:  # a log begun by an older version keeps its columns
        with path.open(newline="") as f:
            fields = next(csv.reader(f), fields) or fields
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _truncate(path: Path, step: int) -> None:
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    keep = rows[:1] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
    if len(keep) < len(rows):
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(keep)
