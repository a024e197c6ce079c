"""The codec model (encoder -> RVQ -> decoder), its recipe configuration, and streaming wrappers."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from svbench.neural.modules import Shortcut, decoder, encoder, frame_transform, istft_decoder, stft_encoder
from svbench.dsp.pitch import PitchCoder
from svbench.neural.quantizer import RVQ

MODEL_DEFAULTS: dict[str, Any] = {
    "sample_rate": 8000,
    "channels": 16,
    "dim": 64,
    "strides": [2, 4, 5, 4],  # 160 samples per frame: 50 frames/s at 8 kHz
    "dilations": [1, 3, 9],
    "n_q": 8,
    "codebook_size": 1024,
    "codebook": "factorized",  # factorized (codes learned by gradient) | ema (k-means; SoundStream's, svcodec's card)
    "code_dim": 8,  # factorized only
    "temperature": 1.0,  # of the codebook loss's soft assignment, relative to the mean code distance
    "up_overlap": False,  # decoder upsampling: kernel 2 x stride (overlapping frames) instead of kernel = stride
    "shortcut": False,  # add a linear frame-transform path beside the encoder and the decoder
    "activation": "elu",  # elu (SEANet) | leaky_relu (slope 0.1, HiFi-GAN; no exp, faster on CPU)
    "head": "wave",  # wave (SEANet decoder up to the sample rate) | istft (low-rate decoder + inverse-STFT head)
    "istft_fft": 160,  # istft head: FFT size and hop, in samples
    "istft_hop": 40,
    "head_channels": 128,  # istft decoder width at the frame rate (halved after its upsampling)
    "front": "wave",  # wave (SEANet encoder from the sample rate) | stft (STFT frames, istft_fft/istft_hop)
    "f0_bits": 0,  # > 0: send each frame's f0 in this many bits, and decode through a source-filter head (istft)
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def config_hash(cfg: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def recipe_config(card_data: dict[str, Any], recipe: str) -> dict[str, Any]:
    """The full configuration of a recipe: card ``[model]``/``[train]`` defaults, then the recipe's overrides
    (a recipe may name a ``base`` recipe it extends)."""
    recipes = card_data.get("recipes", {})
    if recipe not in recipes:
        raise KeyError(f"codec {card_data.get('name')!r} has no recipe {recipe!r} (recipes: {', '.join(recipes)})")
    chain, name = [], recipe
    while name:
        chain.append(recipes[name])
        name = recipes[name].get("base")
    cfg = {"codec": card_data.get("name"), "recipe": recipe,
           "model": merge(MODEL_DEFAULTS, card_data.get("model", {})), "train": dict(card_data.get("train", {}))}
    for layer in reversed(chain):
        cfg["model"] = merge(cfg["model"], layer.get("model", {}))
        cfg["train"] = merge(cfg["train"], layer.get("train", {}))
    return cfg


def bitrate_bps(cfg: dict[str, Any], n_q: int) -> float:
    """Bit/s of a model (its config) with n_q quantizers: n_q codes and the f0 field (if any) per frame."""
    cfg = merge(MODEL_DEFAULTS, cfg)
    frame_rate = cfg["sample_rate"] / math.prod(cfg["strides"])
    return (n_q * math.log2(cfg["codebook_size"]) + cfg["f0_bits"]) * frame_rate


class NeuralCodec(nn.Module):
    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        cfg = merge(MODEL_DEFAULTS, cfg)
        self.cfg = cfg
        self.sample_rate = int(cfg["sample_rate"])
        self.hop = int(math.prod(cfg["strides"]))
        self.n_q = int(cfg["n_q"])
        self.bits_per_code = int(math.log2(cfg["codebook_size"]))
        for key, kinds in (("front", ("wave", "stft")), ("head", ("wave", "istft"))):
            if cfg[key] not in kinds:
                raise ValueError(f"unknown model option {key} = {cfg[key]!r} ({' | '.join(kinds)})")
        enc = (stft_encoder(cfg["head_channels"], cfg["dim"], self.hop, cfg["dilations"], cfg["istft_fft"],
                            cfg["istft_hop"], cfg["activation"]) if cfg["front"] == "stft" else
               encoder(cfg["channels"], cfg["dim"], cfg["strides"], cfg["dilations"], cfg["activation"]))
        self.quantizer = RVQ(cfg["dim"], self.n_q, cfg["codebook_size"], cfg["codebook"], cfg["code_dim"],
                             cfg["temperature"])
        self.f0_bits = int(cfg["f0_bits"])
        self.pitch = PitchCoder(self.sample_rate, self.hop, self.f0_bits) if self.f0_bits else None
        if self.f0_bits and cfg["head"] != "istft":
            raise ValueError("model option f0_bits needs head = 'istft' (the source-filter head is an iSTFT head)")
        dec = (istft_decoder(cfg["head_channels"], cfg["dim"], self.hop, cfg["dilations"], cfg["istft_fft"],
                             cfg["istft_hop"], cfg["activation"], self.sample_rate if self.f0_bits else 0)
               if cfg["head"] == "istft" else
               decoder(cfg["channels"], cfg["dim"], cfg["strides"], cfg["dilations"], cfg["up_overlap"],
                       cfg["activation"]))
        self.encoder: nn.Module = enc
        self.decoder: nn.Module = dec
        if cfg["shortcut"]:
            analysis, synthesis = frame_transform(cfg["dim"], self.hop)
            self.encoder, self.decoder = Shortcut(enc, analysis), Shortcut(dec, synthesis)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def kbps(self, n_q: int) -> float:
        return bitrate_bps(self.cfg, n_q) / 1000

    def f0_hz(self, x: torch.Tensor) -> torch.Tensor:
        """The f0 the encoder sends, as the decoder reads it: x (B, 1, T) -> (B, T // hop) Hz, 0 unvoiced."""
        assert self.pitch is not None
        rows = [self.pitch.hz(self.pitch.indices(w)) for w in x[:, 0].detach().float().cpu().numpy()]
        return torch.from_numpy(np.stack(rows)).float().to(x.device)

    def forward(self, x: torch.Tensor, n_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """x (B, 1, T) with T a multiple of hop; n_q (B,) -> (y, codes, quantizer losses)."""
        zq, codes, losses = self.quantizer(self.encoder(x), n_q)
        return self.decoder(zq, *self._f0(x)), codes, losses

    def _f0(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.f0_hz(x)] if self.pitch else []

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(x), n_q)

    def decoder_inputs(self, codes: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """What ``encode_audio`` gives -> the decoder's inputs: the quantised latents (1, dim, F), and for a
        model that sends f0 a list holding the frames' f0 in Hz (1, F) (else an empty list)."""
        codes = np.asarray(codes, dtype=np.int64)
        cond: list[torch.Tensor] = []
        if self.pitch:
            cond, codes = [torch.from_numpy(self.pitch.hz(codes[:, 0])).float()[None]], codes[:, 1:]
        return self.quantizer.decode(torch.from_numpy(codes).t()[None]), cond

    def encode_audio(self, audio: np.ndarray, n_q: int) -> np.ndarray:
        """float32 mono at sample_rate -> codes (frames, n_q) int, after a column of f0 indices if the model
        sends f0 (f0_bits); the input is zero-padded to whole frames."""
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        x = torch.nn.functional.pad(x, (0, -len(x) % self.hop))[None, None]
        codes = self.encode(x, n_q)[0].t().numpy()
        if self.pitch:
            codes = np.concatenate([self.pitch.indices(x[0, 0].numpy())[:, None], codes], 1)
        return codes

    @torch.no_grad()
    def decode_audio(self, codes: np.ndarray) -> np.ndarray:
        """What ``encode_audio`` gives -> float32 samples (whole frames)."""
        latents, cond = self.decoder_inputs(codes)
        return self.decoder(latents, *cond)[0, 0].numpy()


class StreamingEncoder:
    """Push 20 ms (``hop`` samples) at a time, get that frame's codes (n_q,) back, after its f0 index if the
    model sends f0: what ``encode_audio`` gives for that frame."""

    def __init__(self, model: NeuralCodec, n_q: int):
        self.model, self.n_q, self.state = model, n_q, {}
        self.pitch = model.pitch.fresh() if model.pitch else None

    @torch.no_grad()
    def push(self, frame: np.ndarray) -> np.ndarray:
        if len(frame) != self.model.hop:
            raise ValueError(f"streaming encoder takes frames of {self.model.hop} samples, got {len(frame)}")
        x = torch.from_numpy(np.asarray(frame, dtype=np.float32))[None, None]
        z = self.model.encoder.step(x, self.state)
        codes = self.model.quantizer.encode(z, self.n_q)[0, :, 0].numpy()
        return np.concatenate([[self.pitch.push(x[0, 0].numpy())], codes]) if self.pitch else codes


class StreamingDecoder:
    """Push one frame of codes (what ``StreamingEncoder.push`` gives), get ``hop`` samples (20 ms) back,
    through ``postfilter`` if given (an object whose ``push`` takes and returns samples, e.g. what
    ``postfilter.make_postfilter`` returns)."""

    def __init__(self, model: NeuralCodec, postfilter: Any = None):
        self.model, self.state, self.postfilter = model, {}, postfilter

    @torch.no_grad()
    def push(self, codes: np.ndarray) -> np.ndarray:
        latents, cond = self.model.decoder_inputs(np.asarray(codes)[None])
        out = self.model.decoder.step(latents, self.state, *cond)[0, 0].numpy()
        return self.postfilter.push(out) if self.postfilter else out
