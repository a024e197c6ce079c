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
        dec = (istft_decoder(cfg["head_channels"], cfg["dim"], self.hop, cfg["dilations"], cfg["istft_fft"],
                             cfg["istft_hop"], cfg["activation"]) if cfg["head"] == "istft" else
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
        return n_q * self.bits_per_code * self.frame_rate / 1000

    def forward(self, x: torch.Tensor, n_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """x (B, 1, T) with T a multiple of hop; n_q (B,) -> (y, codes, quantizer losses)."""
        zq, codes, losses = self.quantizer(self.encoder(x), n_q)
        return self.decoder(zq), codes, losses

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(x), n_q)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(codes))

    def encode_audio(self, audio: np.ndarray, n_q: int) -> np.ndarray:
        """float32 mono at sample_rate -> codes (frames, n_q) int; the input is zero-padded to whole frames."""
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        x = torch.nn.functional.pad(x, (0, -len(x) % self.hop))[None, None]
        return self.encode(x, n_q)[0].t().numpy()

    def decode_audio(self, codes: np.ndarray) -> np.ndarray:
        c = torch.from_numpy(np.asarray(codes, dtype=np.int64)).t()[None]
        return self.decode(c)[0, 0].numpy()


class StreamingEncoder:
    """Push 20 ms (``hop`` samples) at a time, get that frame's codes (n_q,) back."""

    def __init__(self, model: NeuralCodec, n_q: int):
        self.model, self.n_q, self.state = model, n_q, {}

    @torch.no_grad()
    def push(self, frame: np.ndarray) -> np.ndarray:
        if len(frame) != self.model.hop:
            raise ValueError(f"streaming encoder takes frames of {self.model.hop} samples, got {len(frame)}")
        x = torch.from_numpy(np.asarray(frame, dtype=np.float32))[None, None]
        z = self.model.encoder.step(x, self.state)
        return self.model.quantizer.encode(z, self.n_q)[0, :, 0].numpy()


class StreamingDecoder:
    """Push one frame of codes (n_q,), get ``hop`` samples (20 ms) back, through ``postfilter`` if given (an
    object whose ``push`` takes and returns samples, e.g. what ``postfilter.make_postfilter`` returns)."""

    def __init__(self, model: NeuralCodec, postfilter: Any = None):
        self.model, self.state, self.postfilter = model, {}, postfilter

    @torch.no_grad()
    def push(self, codes: np.ndarray) -> np.ndarray:
        c = torch.from_numpy(np.asarray(codes, dtype=np.int64))[None, :, None]
        out = self.model.decoder.step(self.model.quantizer.decode(c), self.state)[0, 0].numpy()
        return self.postfilter.push(out) if self.postfilter else out
