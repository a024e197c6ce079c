"""The training loop shared by SVCODEC and SoundStream recipes.

One process on CPU, or one process per GPU under ``torchrun`` (PyTorch DDP; bf16 autocast on GPU).
Everything random is drawn from generators seeded by (seed, step, rank), so a run killed and resumed
from ``last.pt`` continues exactly where the uninterrupted run would have been.
"""

from __future__ import annotations

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
from svbench.neural.config import RecipeConfig, TrainConfig, config_hash
from svbench.neural.discriminators import Discriminators
from svbench.neural.logs import LOG_FIELDS, VALID_FIELDS, append, truncate
from svbench.neural.model import NeuralCodec

RESUME_FREE = ("steps", "log_every", "valid_every", "ckpt_every", "adv_start", "precision", "threads")


def resume_key(config: RecipeConfig) -> str:
    """What must match to resume: every option except those of ``RESUME_FREE``: the number of steps, the logging
    cadence, the precision and thread count (they change rounding, not the recipe) and the start of the
    adversarial phase (checked separately: it may move only while neither old nor new start is reached)."""
    train = {k: v for k, v in config.train.to_dict().items() if k not in RESUME_FREE}
    return config_hash({"model": config.model.to_dict(), "train": train})


def _sample_n_q(t: TrainConfig, batch: int, n_max: int, rng: np.random.Generator) -> torch.Tensor:
    mode = t.bitrate_sampling
    if mode == "balanced":  # every bitrate equally often within each batch (a random rotation of 1..N)
        n = 1 + (np.arange(batch) + rng.integers(n_max)) % n_max
    elif mode == "dropout":  # SoundStream quantizer dropout: n_q ~ U{1..N} for a share p of the examples
        n = np.where(rng.random(batch) < t.dropout_p, rng.integers(1, n_max + 1, batch), n_max)
    else:  # full
        n = np.full(batch, n_max)
    return torch.as_tensor(n, dtype=torch.long)


class Trainer:
    def __init__(self, config: RecipeConfig, out: Path, train_manifest: Path, valid_manifest: Path | None,
                 log: Any = print, progress: bool = True):
        self.config = config
        self.t = t = config.train
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
            torch.set_num_threads(t.threads)
        torch.manual_seed(t.seed)
        self.model = NeuralCodec(config.model).to(self.device)
        self.model.quantizer.code_entropy = bool(t.w_code_entropy)  # computed only where it has a weight
        self.disc = Discriminators(t.discriminators, t.disc_channels).to(self.device)
        self.opt_g = torch.optim.Adam(self.model.parameters(), t.lr, betas=tuple(t.betas))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), t.lr_d, betas=tuple(t.betas))
        self.weights = t.weights()
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
        try:
            old = RecipeConfig.from_dict(state["config"], f"{path}: ")
        except ValueError as err:
            raise checkpoint.CheckpointError(str(err)) from None
        if resume_key(old) != resume_key(self.config):
            raise checkpoint.CheckpointError(
                f"{path}: a checkpoint of another configuration (recipe {old.recipe!r}); "
                f"refusing to resume. Use another --out folder, or delete it to start over.")
        old_adv, adv = old.train.adv_start, self.t.adv_start
        if old_adv != adv and min(old_adv, adv) < int(state["step"]):
            raise checkpoint.CheckpointError(
                f"{path}: adv_start changed from {old_adv} to {adv} after step {min(old_adv, adv)}, which this "
                f"run has passed (step {state['step']}); refusing to resume")
        self.model.load_state_dict(state["model"])
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        for name in ("train_log.csv", "valid.csv"):  # rows written after that checkpoint will be written again
            truncate(self.out / name, self.step)
        self.log(f"resuming {self.config.codec}/{self.config.recipe} from step {self.step} ({path})")

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "config": self.config.to_dict(), "config_hash": self.config.hash(),
                "resume_key": resume_key(self.config), "model": self.model.state_dict(),
                "disc": self.disc.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def save(self) -> None:
        if self.rank:
            return
        checkpoint.save_state(self.out / "last.pt", self.state())
        info = {"step": self.step, "seed": self.t.seed, "train_manifest": self.train_manifest.name,
                "train_manifest_sha256": self.data_hash, "torch": torch.__version__,
                "python": platform.python_version(), "threads": self.t.threads, "world_size": self.world,
                "parameters": sum(p.numel() for p in self.model.parameters())}
        checkpoint.export(self.model, self.config, self.out, info)

    # ------------------------------------------------------------ one step
    def _lr(self) -> float:
        return self.t.lr * self.t.lr_decay ** self.step

    def _autocast(self) -> Any:
        precision = self.t.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def train_step(self, crops: data.Crops) -> dict[str, float]:
        t, step, w = self.t, self.step, self.weights
        rng = np.random.default_rng([t.seed, step, self.rank, 1])
        x = torch.from_numpy(crops.batch(t.batch_size, t.seed, step, self.rank)).to(self.device)[:, None]
        n_q = _sample_n_q(t, x.shape[0], self.model.n_q, rng).to(self.device)
        for group in self.opt_g.param_groups:
            group["lr"] = self._lr()
        for group in self.opt_d.param_groups:
            group["lr"] = t.lr_d * t.lr_decay ** step
        amp = self._autocast()
        with amp:
            y, _, qloss = self.gen(x, n_q)
        y, xs, sr = y.float().squeeze(1), x.squeeze(1), self.model.sample_rate
        row: dict[str, float] = {}
        total: Any = None

        def add(name: str, term: torch.Tensor) -> None:  # the weighted sum of losses.LOSSES, in their order
            nonlocal total
            total = w[name] * term if total is None else total + w[name] * term
            row[name] = term.item()

        add("recon", losses.multi_scale_mel(y, xs, sr, t.stft_ffts) if t.recon == "mel" else
            losses.multi_resolution_stft(y, xs, t.stft_ffts))
        if w["wave"]:  # time-domain L1: pins the phase that the magnitude losses leave free
            add("wave", losses.waveform_l1(y, xs, sr, t.wave_lowpass_hz))
        if w["mel"]:  # log-mel envelope over 32 ms frames (what a recognizer's features see)
            add("mel", losses.log_mel_l1(y, xs, sr))
        for name in ("commit", "vq", "code_entropy"):  # the quantizer's
            if name in qloss and w[name]:
                add(name, qloss[name])
        if step >= t.adv_start:
            with amp:
                d_real, d_fake = self.dis(x), self.dis(y.detach()[:, None])
            loss_d = losses.d_loss(_fp32(d_real), _fp32(d_fake), t.adv_loss)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            torch.nn.utils.clip_grad_norm_(self.disc.parameters(), t.grad_clip)
            self.opt_d.step()
            with amp:
                d_real, d_fake = self.dis(x), self.dis(y[:, None])
            d_real, d_fake = _fp32(d_real), _fp32(d_fake)
            adv, fm = losses.g_loss(d_fake, t.adv_loss), losses.feature_matching(d_real, d_fake)
            add("adv", adv)
            add("fm", fm)
            row["loss_d"] = loss_d.item()
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.opt_g.step()
        self.step += 1
        if t.reseed_every and self.step % t.reseed_every == 0:
            gen = torch.Generator().manual_seed(int(t.seed) * 1_000_003 + self.step)
            self.model.quantizer.reseed_dead(t.reseed_threshold, gen)
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
            for n_q in self.t.valid_n_q:
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
        total = int(steps if steps is not None else t.steps)
        sr = self.model.sample_rate
        self.data_hash = data.manifest_hash(self.train_manifest)
        crops = data.Crops(data.load_clips(self.train_manifest, sr, held_out=t.held_out),
                           int(t.segment_s * sr) // self.model.hop * self.model.hop)
        valid = (data.load_clips(Path(self.valid_manifest), sr, t.valid_seconds, held_out=t.held_out)[: t.valid_clips]
                 if self.valid_manifest and self.rank == 0 else [])
        writer = SummaryWriter(str(self.out / "tensorboard")) if self.rank == 0 else None
        log_path, valid_path = self.out / "train_log.csv", self.out / "valid.csv"
        self.model.train()
        bar = tqdm(total=total, initial=self.step, disable=not self.progress or self.rank != 0, unit="step",
                   desc=f"{self.config.codec}/{self.config.recipe}")
        t0, acc, first = time.perf_counter(), {}, self.step
        while self.step < total:
            row = self.train_step(crops)
            for k, v in row.items():
                acc.setdefault(k, []).append(v)
            bar.update(1)
            if self.rank == 0 and (self.step % t.log_every == 0 or self.step == total):
                mean = {k: float(np.mean(v)) for k, v in acc.items()}
                mean["codebook_use"] = float(np.mean(self.model.quantizer.usage_stats()))
                mean["time_s"] = round(time.perf_counter() - t0, 2)
                for k, v in mean.items():
                    writer.add_scalar(f"train/{k}", v, self.step)
                append(log_path, {"step": self.step, **mean}, LOG_FIELDS)
                bar.set_postfix(loss=f"{mean['loss_g']:.3f}", recon=f"{mean['recon']:.3f}")
                acc = {}
            if valid and (self.step % t.valid_every == 0 or self.step == total):
                rows = self.validate(valid)
                for r in rows:
                    append(valid_path, r, VALID_FIELDS)
                    for k in ("pesq_nb", "stoi"):
                        if k in r:
                            writer.add_scalar(f"valid/{k}@{r['kbps']:g}kbps", r[k], self.step)
                bar.write(f"step {self.step} validation: " + "; ".join(
                    f"{r['kbps']:g}k PESQ-NB {r.get('pesq_nb', np.nan):.2f} STOI {r.get('stoi', np.nan):.3f}"
                    for r in rows))
            if self.step % t.ckpt_every == 0 or self.step == total:
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
                     f"{speed * t.batch_size * self.world * t.segment_s:.1f} s of audio/s")
        return self.out / "model.safetensors"


def _fp32(outputs: list) -> list:
    """Discriminator outputs [(logits, [features])] in fp32, so the GAN losses are not summed in bf16."""
    return [(logits.float(), [f.float() for f in feats]) for logits, feats in outputs]
